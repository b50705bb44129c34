package stack

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certTTL is how long the local stack's certificates live; a stack kept around longer is
// re-keyed by deleting its pki directory.
const certTTL = 365 * 24 * time.Hour

// authority is a certificate authority whose key stays on disk in the stack's pki directory.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
	// CertFile is the PEM file of the CA certificate.
	CertFile string
}

// keyPair names the PEM files of an issued certificate and its key.
type keyPair struct {
	CertFile, KeyFile string
}

// certRequest describes a certificate to issue.
type certRequest struct {
	commonName string
	orgs       []string
	dnsNames   []string
	ips        []net.IP
	server     bool
	client     bool
}

// loadOrCreateCA reuses dir/name.{crt,key} when present so that kubeconfigs written by an
// earlier start keep working, and creates a new CA otherwise.
func loadOrCreateCA(dir, name string) (*authority, error) {
	certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if ca, err := loadCA(certFile, keyFile); err == nil {
		return ca, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load CA %s: %w", name, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key of CA %s: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(certTTL),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("sign CA %s: %w", name, err)
	}
	if err := writePair(certFile, keyFile, der, key); err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &authority{cert: cert, key: key, CertFile: certFile}, nil
}

func loadCA(certFile, keyFile string) (*authority, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s or %s holds no PEM block", certFile, keyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, CertFile: certFile}, nil
}

// issue signs a new certificate and writes it with its key as dir/name.{crt,key}.
func (ca *authority) issue(dir, name string, req certRequest) (keyPair, error) {
	pair := keyPair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	certPEM, keyPEM, err := ca.issuePEM(req)
	if err != nil {
		return pair, fmt.Errorf("issue %s: %w", name, err)
	}
	return pair, writeFiles(pair, certPEM, keyPEM)
}

// issuePEM signs a new certificate and returns it and its key as PEM.
func (ca *authority) issuePEM(req certRequest) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: req.commonName, Organization: req.orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(certTTL),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:     req.dnsNames,
		IPAddresses:  req.ips,
	}
	if req.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if req.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, err
	}
	return encodePair(der, key)
}

// writeServiceAccountKey writes the key pair kube-apiserver signs ServiceAccount tokens with.
func writeServiceAccountKey(dir string) (keyPair, error) {
	pair := keyPair{CertFile: filepath.Join(dir, "sa.pub"), KeyFile: filepath.Join(dir, "sa.key")}
	if _, err := os.Stat(pair.KeyFile); err == nil {
		return pair, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pair, err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return pair, err
	}
	if err := os.WriteFile(pair.CertFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return pair, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return pair, err
	}
	return pair, os.WriteFile(pair.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}

func encodePair(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func writePair(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	certPEM, keyPEM, err := encodePair(der, key)
	if err != nil {
		return err
	}
	return writeFiles(keyPair{CertFile: certFile, KeyFile: keyFile}, certPEM, keyPEM)
}

// writeFiles writes a certificate readable by all and its key readable by the owner only.
func writeFiles(pair keyPair, certPEM, keyPEM []byte) error {
	if err := os.WriteFile(pair.CertFile, certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(pair.KeyFile, keyPEM, 0o600)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on Linux; a fixed serial would still yield a valid certificate.
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
