import pytest

from engine.did import (
    Signer,
    base58_decode,
    base58_encode,
    did_from_public_key,
    public_key_from_did,
    verify_signature,
)
from engine.errors import VerificationError

# Encodings of points of small order (identity, order 2, 4 and 8) and a non-canonical one.
SMALL_ORDER_KEYS = [
    bytes(32),
    b"\x01" + bytes(31),
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


def test_did_key_round_trip() -> None:
    signer = Signer.generate()
    assert signer.did.startswith("did:key:z6Mk")
    assert public_key_from_did(signer.did) == signer.public_key


def test_reference_vector_did_decodes() -> None:
    key = public_key_from_did("did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7")
    assert len(key) == 32


def test_base58_keeps_leading_zeros() -> None:
    assert base58_decode(base58_encode(b"\0\0abc")) == b"\0\0abc"


@pytest.mark.parametrize("key", SMALL_ORDER_KEYS)
def test_small_order_keys_are_refused(key: bytes) -> None:
    with pytest.raises(VerificationError) as err:
        public_key_from_did(did_from_public_key(key))
    assert err.value.code == "INVALID_DID_FORMAT"


@pytest.mark.parametrize(
    "did",
    [
        "",
        "did:web:example.com",
        "did:key:6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7",
        "did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c0",  # 0 is not base58
        "did:key:z6MkWRONG",
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",  # secp256k1 multicodec
        "did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7 ",
        "did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7\n",  # "$" allowed this
        None,
    ],
)
def test_malformed_dids_are_refused(did: object) -> None:
    with pytest.raises(VerificationError) as err:
        public_key_from_did(did)
    assert err.value.code == "INVALID_DID_FORMAT"


def test_signature_by_another_key_is_refused() -> None:
    alice, mallory = Signer.generate(), Signer.generate()
    verify_signature(alice.did, b"m", alice.sign(b"m"))
    with pytest.raises(VerificationError) as err:
        verify_signature(alice.did, b"m", mallory.sign(b"m"))
    assert err.value.code == "SIGNATURE_INVALID"


def test_repr_hides_the_secret() -> None:
    signer = Signer.generate()
    assert signer.seed.hex() not in repr(signer)
