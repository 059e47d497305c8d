"""Credential encryption at rest: key from env or a 0600 key file made once; previous keys; clear errors."""

from __future__ import annotations

import stat
import threading

import pytest
from cryptography.fernet import Fernet

from activities.secrets.credential_crypto import (ENV_KEY, ENV_PREVIOUS, SecretKeyError, UndecryptableError,
                                                   key_file_path, load_cipher)

SECRET = "r8_live-token-0123456789abcdef"


def test_round_trip_and_ciphertext_hides_the_value(tmp_path):
    cipher = load_cipher(tmp_path, env={})
    token = cipher.encrypt(SECRET)
    assert SECRET not in token and SECRET.encode() not in token.encode()
    assert cipher.decrypt(token) == SECRET
    assert cipher.encrypt(SECRET) != token  # a fresh IV each time
    assert cipher.decrypt(cipher.encrypt("ünïcødé ✓")) == "ünïcødé ✓"


def test_key_file_created_once_with_mode_0600(tmp_path, caplog):
    data_dir = tmp_path / "data"
    first = load_cipher(data_dir, env={})
    path = key_file_path(data_dir)
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_bytes()
    Fernet(key.strip())  # a valid Fernet key
    token = first.encrypt(SECRET)
    second = load_cipher(data_dir, env={})  # a restart reuses the file
    assert path.read_bytes() == key and second.decrypt(token) == SECRET
    assert [p.name for p in data_dir.iterdir()] == ["secret.key"]  # no temp file left behind
    assert key.strip().decode() not in caplog.text  # the key is never logged


def test_concurrent_first_starts_agree_on_one_key(tmp_path):
    ciphers, errors = [], []

    def start():
        try:
            ciphers.append(load_cipher(tmp_path, env={}))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    token = ciphers[0].encrypt(SECRET)
    assert all(c.decrypt(token) == SECRET for c in ciphers)


def test_loose_key_file_permissions_are_tightened(tmp_path):
    path = key_file_path(tmp_path)
    path.write_bytes(Fernet.generate_key())
    path.chmod(0o644)
    load_cipher(tmp_path, env={})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_env_key_wins_over_the_key_file(tmp_path):
    key = Fernet.generate_key().decode()
    cipher = load_cipher(tmp_path, env={ENV_KEY: key})
    assert not key_file_path(tmp_path).exists()
    assert Fernet(key.encode()).decrypt(cipher.encrypt(SECRET).encode()).decode() == SECRET


def test_previous_key_still_decrypts_and_reencrypt_moves_to_the_new_key(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_token = load_cipher(tmp_path, env={ENV_KEY: old}).encrypt(SECRET)
    rotated = load_cipher(tmp_path, env={ENV_KEY: new, ENV_PREVIOUS: f" {Fernet.generate_key().decode()}, {old} ,"})
    assert rotated.previous_count == 2
    assert rotated.decrypt(old_token) == SECRET and not rotated.is_current(old_token)
    moved = rotated.reencrypt(old_token)
    assert rotated.is_current(moved)
    assert load_cipher(tmp_path, env={ENV_KEY: new}).decrypt(moved) == SECRET  # old key no longer needed
    with pytest.raises(UndecryptableError):
        load_cipher(tmp_path, env={ENV_KEY: new}).decrypt(old_token)  # without the previous key: gone


def test_wrong_key_cannot_decrypt(tmp_path):
    token = load_cipher(tmp_path / "a", env={}).encrypt(SECRET)
    other = load_cipher(tmp_path / "b", env={})
    with pytest.raises(UndecryptableError) as err:
        other.decrypt(token)
    assert SECRET not in str(err.value)
    with pytest.raises(UndecryptableError):
        other.decrypt(token[:-4] + "AAAA")  # tampered


@pytest.mark.parametrize("bad", ["not-a-key", "c2hvcnQ=", Fernet.generate_key().decode()[:-2], "x" * 44],
                         ids=["text", "short", "truncated-key", "not-base64"])
def test_bad_secret_key_is_a_clear_error_naming_the_variable(tmp_path, bad):
    with pytest.raises(SecretKeyError) as err:
        load_cipher(tmp_path, env={ENV_KEY: bad})
    message = str(err.value)
    assert message.startswith(f"{ENV_KEY}: not a valid encryption key") and "32 bytes" in message
    assert bad not in message  # the value is not echoed
    assert not key_file_path(tmp_path).exists()


def test_bad_previous_key_and_bad_key_file_are_clear_errors(tmp_path):
    with pytest.raises(SecretKeyError, match=f"^{ENV_PREVIOUS} \\(item 2\\): not a valid encryption key"):
        load_cipher(tmp_path, env={ENV_KEY: Fernet.generate_key().decode(),
                                   ENV_PREVIOUS: f"{Fernet.generate_key().decode()},oops"})
    key_file_path(tmp_path).write_text("garbage\n")
    with pytest.raises(SecretKeyError, match="secret.key: not a valid encryption key"):
        load_cipher(tmp_path, env={})
