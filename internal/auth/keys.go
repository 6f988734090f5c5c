package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MinSecretLen is the shortest HMAC secret NewVerifier and Mint accept.
// RFC 7518 §3.2 requires a key at least as long as the hash output; a short
// secret makes HS256 tokens brute-forceable offline from a single token.
const MinSecretLen = 32

// MinRSABits is the smallest RSA modulus accepted, from a PEM file or a JWKS.
const MinRSABits = 2048

// The algorithm families. They are shared, read-only slices so that the
// per-request key checks allocate nothing.
var (
	hmacAlgs    = []string{"HS256", "HS384", "HS512"}
	rsaAlgs     = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	es256Algs   = []string{"ES256"}
	es384Algs   = []string{"ES384"}
	es512Algs   = []string{"ES512"}
	ed25519Algs = []string{"EdDSA"}
	// jwksAlgs is everything a JWKS key may be used for. HMAC is absent on
	// purpose: a JWKS is public, so a symmetric key in it is no secret.
	jwksAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// algsFor returns the algorithms key may verify, or an error when the key
// is of a type, curve or size Tether does not accept. Deciding the
// algorithm from the key, never from the token, is what defeats algorithm
// confusion (e.g. an HS256 token "signed" with a public key).
func algsFor(key any) ([]string, error) {
	switch k := key.(type) {
	case []byte:
		if len(k) < MinSecretLen {
			return nil, fmt.Errorf("HMAC secret is %d bytes; at least %d are required", len(k), MinSecretLen)
		}
		return hmacAlgs, nil
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			return nil, fmt.Errorf("RSA key is %d bits; at least %d are required", bits, MinRSABits)
		}
		return rsaAlgs, nil
	case *ecdsa.PublicKey:
		if k.Curve == nil {
			return nil, errors.New("ECDSA key has no curve")
		}
		switch name := k.Curve.Params().Name; name {
		case "P-256":
			return es256Algs, nil
		case "P-384":
			return es384Algs, nil
		case "P-521":
			return es512Algs, nil
		default:
			return nil, fmt.Errorf("ECDSA curve %s is not supported (use P-256, P-384 or P-521)", name)
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("Ed25519 key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return ed25519Algs, nil
	default:
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
}

// loadPublicKeyFile reads the PEM public key at path.
func loadPublicKeyFile(path string) (any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	key, err := parsePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("load public key %s: %w", path, err)
	}
	return key, nil
}

// parsePublicKeyPEM decodes the first PEM block of data as a public key in
// PKIX ("PUBLIC KEY"), PKCS #1 ("RSA PUBLIC KEY") or certificate form. For a
// certificate only its key is used: the gateway trusts the file because an
// operator configured it, so the chain, validity dates and usages are not
// checked. Private keys are refused rather than reduced to their public half
// so that signing material is never left lying on the gateway.
func parsePublicKeyPEM(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var (
		key any
		err error
	)
	switch {
	case strings.Contains(block.Type, "PRIVATE KEY") || block.Type == "EC PARAMETERS":
		return nil, fmt.Errorf("found a %q block: configure the public key, not the private key (openssl pkey -in key.pem -pubout)", block.Type)
	case block.Type == "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case block.Type == "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case block.Type == "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("unsupported PEM block %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	if _, err := algsFor(key); err != nil {
		return nil, err
	}
	return key, nil
}
