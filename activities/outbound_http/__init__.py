"""Every outbound HTTP call of the control plane (SSO discovery, tokens and keys, the SSO test,
notifications, cloud providers) goes through one client factory (``client.py``), configured by the
``outbound_http:`` settings block (``settings.py``): proxies from the environment, the CA bundle,
verification, the timeout, and the correlation id on every request. ``tls.py`` holds the TLS pieces
the job CLI shares."""
