"""The S3-compatible storage endpoint's domain: SigV4 verification, aws-chunked bodies, the disk store,
the object catalog, multipart uploads, credentials and who may do what (``api/routers/storage.py``
serves it at ``/api/cloud/storage``)."""
