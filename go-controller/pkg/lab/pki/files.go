package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const (
	certMode = 0o644
	keyMode  = 0o600
)

// ensureCA loads the CA from certPath/keyPath, or replaces it if unusable.
func ensureCA(certPath, keyPath string, now time.Time) (*authority, error) {
	cert, key, err := loadPair(certPath, keyPath)
	if err == nil {
		err = checkCA(cert, key, now)
	}
	if err == nil {
		return &authority{cert: cert, key: key}, nil
	}
	der, key, err := newCA(now)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA: %w", err)
	}
	if err := writePair(certPath, keyPath, der, key); err != nil {
		return nil, err
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new CA: %w", err)
	}
	return &authority{cert: cert, key: key}, nil
}

// ensureLeaf keeps the pair at certPath/keyPath if it satisfies s under ca,
// and otherwise issues a new one.
func ensureLeaf(ca *authority, certPath, keyPath string, s leafSpec, now time.Time) error {
	cert, key, err := loadPair(certPath, keyPath)
	if err == nil {
		err = checkLeaf(ca, cert, key, s, now)
	}
	if err == nil {
		return nil
	}
	der, key, err := issue(ca, s, now)
	if err != nil {
		return fmt.Errorf("pki: issue %s: %w", certPath, err)
	}
	return writePair(certPath, keyPath, der, key)
}

// ensureServiceAccountKey keeps the key pair if the public key file still
// belongs to the private key; replacing it invalidates every issued token.
func ensureServiceAccountKey(keyPath, pubPath string) error {
	key, err := loadKey(keyPath)
	if err == nil {
		var pub crypto.PublicKey
		if pub, err = loadPublicKey(pubPath); err == nil {
			if p, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(pub) {
				err = errors.New("public key does not match private key")
			}
		}
	}
	if err == nil {
		return nil
	}
	k, err := newKey()
	if err != nil {
		return fmt.Errorf("pki: generate service-account key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return fmt.Errorf("pki: marshal service-account public key: %w", err)
	}
	if err := writeKey(keyPath, k); err != nil {
		return err
	}
	return writePEM(pubPath, "PUBLIC KEY", pubDER, certMode)
}

func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	der, err := readPEM(certPath, "CERTIFICATE")
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	key, err := loadKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func loadKey(path string) (crypto.Signer, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: %T is not a signing key", path, k)
	}
	return signer, nil
}

func loadPublicKey(path string) (crypto.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	return x509.ParsePKIXPublicKey(der)
}

// readPEM returns the DER of the single PEM block in path; trailing data or
// a different block type counts as corruption.
func readPEM(path, blockType string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != blockType || len(rest) != 0 {
		return nil, fmt.Errorf("%s: expected one PEM %q block", path, blockType)
	}
	return block.Bytes, nil
}

// writePair writes the key first: a crash between the two writes leaves a
// certificate that does not match its key, which the next Ensure replaces.
func writePair(certPath, keyPath string, certDER []byte, key crypto.Signer) error {
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", certDER, certMode)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: marshal key for %s: %w", path, err)
	}
	return writePEM(path, "PRIVATE KEY", der, keyMode)
}

func writePEM(path, blockType string, der []byte, mode os.FileMode) error {
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), mode)
}

// writeFileAtomic replaces path in one rename so that a component starting
// concurrently never reads a half-written file. CreateTemp makes the file
// 0600, so a key is never readable by others even before the final Chmod.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(mode); err == nil {
		if _, err = f.Write(data); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return nil
}
