package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"
)

const (
	validity = 365 * 24 * time.Hour
	// clockSkew backdates NotBefore so that components whose clocks lag
	// slightly behind accept a certificate issued a moment ago.
	clockSkew = time.Hour
	// renewBefore regenerates certificates close to expiry rather than only
	// expired ones, so a lab started now cannot see them expire while it runs.
	renewBefore = 24 * time.Hour
)

// authority is a loaded CA able to sign leaves.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// leafSpec is what a leaf certificate must say; checkLeaf and issue both
// work from it so that what is checked is exactly what is issued.
type leafSpec struct {
	cn     string
	orgs   []string
	server bool // ServerAuth with SANs; otherwise ClientAuth
	// peer adds ClientAuth to a server certificate: a RAFT member of OVN
	// central both accepts and opens connections to the other members.
	peer bool
	dns  []string
	ips  []net.IP
}

func (s leafSpec) usages() []x509.ExtKeyUsage {
	switch {
	case s.server && s.peer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	case s.server:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

// newCA returns a self-signed CA certificate (DER) and its key.
func newCA(now time.Time) ([]byte, crypto.Signer, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "kovn-lab-ca"},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	return der, key, err
}

// issue returns a leaf certificate (DER) for s signed by ca, and its key.
func issue(ca *authority, s leafSpec, now time.Time) ([]byte, crypto.Signer, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	// A leaf outliving its CA would only fail verification later with a
	// confusing error, so it expires with the CA at the latest.
	notAfter := now.Add(validity)
	if ca.cert.NotAfter.Before(notAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           s.usages(),
		BasicConstraintsValid: true,
		DNSNames:              s.dns,
		IPAddresses:           s.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	return der, key, err
}

// checkCA reports why cert and key are not a usable CA, or nil.
func checkCA(cert *x509.Certificate, key crypto.Signer, now time.Time) error {
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("not a CA certificate")
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return fmt.Errorf("not self-signed: %w", err)
	}
	if err := checkTimes(cert, now); err != nil {
		return err
	}
	return checkKeyMatches(cert, key)
}

// checkLeaf reports why cert and key do not satisfy s under ca, or nil.
func checkLeaf(ca *authority, cert *x509.Certificate, key crypto.Signer, s leafSpec, now time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	// Verify accepts a certificate that has any one of KeyUsages, so each
	// required usage is checked on its own.
	for _, u := range s.usages() {
		opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{u}}
		if _, err := cert.Verify(opts); err != nil {
			return err
		}
	}
	if err := checkTimes(cert, now); err != nil {
		return err
	}
	if cert.Subject.CommonName != s.cn || !sameStrings(cert.Subject.Organization, s.orgs) {
		return fmt.Errorf("subject %q does not match CN=%s O=%v", cert.Subject, s.cn, s.orgs)
	}
	if !sameStrings(cert.DNSNames, s.dns) || !sameIPs(cert.IPAddresses, s.ips) {
		return fmt.Errorf("SANs %v %v do not match %v %v", cert.DNSNames, cert.IPAddresses, s.dns, s.ips)
	}
	return checkKeyMatches(cert, key)
}

func checkTimes(cert *x509.Certificate, now time.Time) error {
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("not valid before %v", cert.NotBefore)
	}
	if now.Add(renewBefore).After(cert.NotAfter) {
		return fmt.Errorf("expires at %v", cert.NotAfter)
	}
	return nil
}

func checkKeyMatches(cert *x509.Certificate, key crypto.Signer) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("private key does not match certificate")
	}
	return nil
}

// sameStrings compares as sets, so reordering a request does not regenerate.
func sameStrings(a, b []string) bool {
	return slices.Equal(sortedSet(a, func(s string) string { return s }),
		sortedSet(b, func(s string) string { return s }))
}

func sameIPs(a, b []net.IP) bool {
	// To16 makes an IPv4 address given in 4-byte form equal to the 16-byte
	// form that x509 parsing produces.
	key := func(ip net.IP) string { return string(ip.To16()) }
	return slices.Equal(sortedSet(a, key), sortedSet(b, key))
}

func sortedSet[T any](xs []T, key func(T) string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, key(x))
	}
	slices.SortFunc(out, strings.Compare)
	return slices.Compact(out)
}
