#!/usr/bin/env python3
"""JWT fixtures for PolicyJWTTests, made with PyJWT + cryptography.

  jwttool.py make DIR     writes DIR/jwks.json (RSA, EC P-256/P-384, Ed25519, oct keys)
                          and prints one JSON object: case name -> token.
  jwttool.py bench DIR N  also writes DIR/tokens-rs256.txt and DIR/tokens-es256.txt,
                          N distinct valid tokens each (one per line), for comparison/policies.
"""
import base64, hashlib, hmac, json, os, sys, time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def num(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def main() -> None:
    if not ((len(sys.argv) == 3 and sys.argv[1] == "make") or (len(sys.argv) == 4 and sys.argv[1] == "bench")):
        sys.exit(__doc__)
    out = sys.argv[2]
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec256 = ec.generate_private_key(ec.SECP256R1())
    ec384 = ec.generate_private_key(ec.SECP384R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    secret = os.urandom(32)
    rn = rsa_key.public_key().public_numbers()
    p256 = ec256.public_key().public_numbers()
    p384 = ec384.public_key().public_numbers()
    ed_raw = ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwks = {"keys": [
        {"kty": "RSA", "kid": "rsa1", "n": num(rn.n), "e": num(rn.e)},
        {"kty": "EC", "kid": "ec256", "crv": "P-256", "x": b64(p256.x.to_bytes(32, "big")), "y": b64(p256.y.to_bytes(32, "big"))},
        {"kty": "EC", "kid": "ec384", "crv": "P-384", "x": b64(p384.x.to_bytes(48, "big")), "y": b64(p384.y.to_bytes(48, "big"))},
        {"kty": "OKP", "kid": "ed1", "crv": "Ed25519", "x": b64(ed_raw)},
        {"kty": "oct", "kid": "hs1", "k": b64(secret)},
    ]}
    with open(os.path.join(out, "jwks.json"), "w") as f:
        json.dump(jwks, f)

    now = int(time.time())
    def claims(**over):
        c = {"iss": "https://id.example", "aud": "api", "sub": "alice", "role": "admin", "iat": now, "exp": now + 600}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    tokens = {
        "rs256": jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa1"}),
        "ps256": jwt.encode(claims(), rsa_key, algorithm="PS256", headers={"kid": "rsa1"}),
        "es256": jwt.encode(claims(), ec256, algorithm="ES256", headers={"kid": "ec256"}),
        "es384": jwt.encode(claims(), ec384, algorithm="ES384", headers={"kid": "ec384"}),
        "eddsa": jwt.encode(claims(), ed, algorithm="EdDSA", headers={"kid": "ed1"}),
        "hs256": jwt.encode(claims(), secret, algorithm="HS256", headers={"kid": "hs1"}),
        "no_kid": jwt.encode(claims(), rsa_key, algorithm="RS256"),
        "aud_list": jwt.encode(claims(aud=["other", "api"]), rsa_key, algorithm="RS256", headers={"kid": "rsa1"}),
        "bob": jwt.encode(claims(sub="bob"), rsa_key, algorithm="RS256", headers={"kid": "rsa1"}),
        "expired": jwt.encode(claims(exp=now - 3600), rsa_key, algorithm="RS256", headers={"kid": "rsa1"}),
        "not_yet": jwt.encode(claims(nbf=now + 3600), rsa_key, algorithm="RS256", headers={"kid": "rsa1"}),
        "wrong_iss": jwt.encode(claims(iss="https://evil.example"), rsa_key, algorithm="RS256", headers={"kid": "rsa1"}),
        "wrong_aud": jwt.encode(claims(aud="billing"), rsa_key, algorithm="RS256", headers={"kid": "rsa1"}),
        "rs512_not_allowed": jwt.encode(claims(), rsa_key, algorithm="RS512", headers={"kid": "rsa1"}),
    }
    # Bad signature: a valid token's signature over a different payload (sub changed).
    good = tokens["rs256"].split(".")
    forged_payload = b64(json.dumps(claims(sub="mallory")).encode())
    tokens["bad_signature"] = ".".join([good[0], forged_payload, good[2]])
    # alg: none, unsigned.
    tokens["alg_none"] = b64(b'{"alg":"none","typ":"JWT"}') + "." + b64(json.dumps(claims()).encode()) + "."
    # HS/RS key confusion: HS256 keyed with the RSA public key (PEM and JWK n) under the RSA kid.
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for name, key in (("confusion_pem", pem), ("confusion_n", rn.n.to_bytes(256, "big"))):
        head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa1"}).encode())
        body = b64(json.dumps(claims()).encode())
        sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        tokens[name] = f"{head}.{body}.{b64(sig)}"
    if sys.argv[1] == "bench":
        n = int(sys.argv[3])
        for name, key, alg, kid in (("rs256", rsa_key, "RS256", "rsa1"), ("es256", ec256, "ES256", "ec256")):
            with open(os.path.join(out, f"tokens-{name}.txt"), "w") as f:
                for i in range(n):
                    f.write(jwt.encode(claims(exp=now + 7200, jti=f"{name}-{i}"), key, algorithm=alg, headers={"kid": kid}) + "\n")
    print(json.dumps(tokens))


if __name__ == "__main__":
    main()
