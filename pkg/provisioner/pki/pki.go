// Package pki issues the certificates of the platform: the local stack's host and every
// user cluster's CAs, serving certificates and client credentials. Keys are ECDSA P-256;
// key files are written 0600.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ucloudstack/containerservice/pkg/provisioner/atomicfile"
)

// DefaultTTL is how long certificates live unless a request says otherwise; components'
// certificates are issued again at every start of a control plane.
const DefaultTTL = 365 * 24 * time.Hour

// caTTL is how long a CA lives, as kubeadm's do.
const caTTL = 10 * 365 * 24 * time.Hour

// Authority is a certificate authority whose key is kept on disk.
type Authority struct {
	cert *x509.Certificate
	key  crypto.Signer
	// CertFile is the PEM file of the CA certificate.
	CertFile string
}

// KeyPair names the PEM files of an issued certificate and its key.
type KeyPair struct {
	CertFile, KeyFile string
}

// Request describes a certificate to issue.
type Request struct {
	// CommonName is the subject's CN: the username of a client certificate.
	CommonName string
	// Organizations are the subject's O: the groups of a client certificate.
	Organizations []string
	// DNSNames and IPs are the names a serving certificate is valid for.
	DNSNames []string
	IPs      []net.IP
	// Server and Client choose the extended key usages.
	Server, Client bool
	// TTL is the certificate's lifetime; zero means DefaultTTL.
	TTL time.Duration
}

// LoadOrCreateCA reuses the CA dir/name when present, so that credentials issued earlier
// keep working, and creates a new CA otherwise.
//
// A CA is kept as one file, dir/name.pair (certificate and key, replaced atomically), and
// as dir/name.crt and dir/name.key for the components that read them. The pair is
// written first: a crash between files leaves a pair from which the other two are
// written again here, never a certificate without its key.
func LoadOrCreateCA(dir, name string) (*Authority, error) {
	certFile, keyFile, pairFile := caFiles(dir, name)
	ca, err := loadPair(pairFile, certFile)
	if errors.Is(err, os.ErrNotExist) {
		if !exists(certFile) && !exists(keyFile) {
			// Nothing of it: a new CA. (Only then: replacing a CA that is merely
			// unreadable would silently invalidate every credential it signed.)
			return CreateCA(dir, name)
		}
		// Written before pairs existed: adopt the two files when they match.
		ca, err = loadCA(certFile, keyFile)
		if err == nil {
			err = atomicfile.WriteFile(pairFile, append(ca.CertPEM(), ca.keyPEM()...), 0o600)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load CA %s: %w", name, err)
	}
	if cur, err := loadCA(certFile, keyFile); err != nil || !cur.cert.Equal(ca.cert) {
		if err := writeFiles(KeyPair{CertFile: certFile, KeyFile: keyFile}, ca.CertPEM(), ca.keyPEM()); err != nil {
			return nil, fmt.Errorf("restore CA %s from its pair: %w", name, err)
		}
	}
	return ca, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// PromoteCA makes the CA dir/from the CA dir/to, replacing it (pair first, as CreateCA
// writes), and returns it. from is kept; promoting again is harmless.
func PromoteCA(dir, from, to string) (*Authority, error) {
	fromCert, _, fromPair := caFiles(dir, from)
	ca, err := loadPair(fromPair, fromCert)
	if err != nil {
		return nil, fmt.Errorf("load CA %s: %w", from, err)
	}
	certFile, keyFile, pairFile := caFiles(dir, to)
	if err := atomicfile.WriteFile(pairFile, append(ca.CertPEM(), ca.keyPEM()...), 0o600); err != nil {
		return nil, fmt.Errorf("write CA %s: %w", to, err)
	}
	if err := writeFiles(KeyPair{CertFile: certFile, KeyFile: keyFile}, ca.CertPEM(), ca.keyPEM()); err != nil {
		return nil, err
	}
	return &Authority{cert: ca.cert, key: ca.key, CertFile: certFile}, nil
}

// RemoveCA removes the files of the CA dir/name.
func RemoveCA(dir, name string) error {
	certFile, keyFile, pairFile := caFiles(dir, name)
	var errs []error
	for _, f := range []string{pairFile, keyFile, certFile} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func caFiles(dir, name string) (certFile, keyFile, pairFile string) {
	return filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pair")
}

// CreateCA makes a new CA as dir/name, replacing any there: everything the old one signed
// stops being trusted by whoever trusts the new one alone.
func CreateCA(dir, name string) (*Authority, error) {
	certFile, keyFile, pairFile := caFiles(dir, name)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key of CA %s: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caTTL),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("sign CA %s: %w", name, err)
	}
	certPEM, keyPEM, err := encodePair(der, key)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(pairFile, append(append([]byte{}, certPEM...), keyPEM...), 0o600); err != nil {
		return nil, fmt.Errorf("write CA %s: %w", name, err)
	}
	if err := writeFiles(KeyPair{CertFile: certFile, KeyFile: keyFile}, certPEM, keyPEM); err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &Authority{cert: cert, key: key, CertFile: certFile}, nil
}

// Certificate returns the CA certificate.
func (ca *Authority) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate as PEM, for kubeconfigs and trust bundles.
func (ca *Authority) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

func loadCA(certFile, keyFile string) (*Authority, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	return parseCA(certPEM, keyPEM, certFile)
}

// loadPair reads a CA's pair file; certFile is the name the Authority reports.
func loadPair(pairFile, certFile string) (*Authority, error) {
	data, err := os.ReadFile(pairFile)
	if err != nil {
		return nil, err
	}
	return parseCA(data, data, certFile)
}

// parseCA takes the first certificate of certPEM and the first EC key of keyPEM, which
// may be one and the same buffer.
func parseCA(certPEM, keyPEM []byte, certFile string) (*Authority, error) {
	cb, kb := firstBlock(certPEM, "CERTIFICATE"), firstBlock(keyPEM, "EC PRIVATE KEY")
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s: no certificate and key found", certFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("the key of %s does not match its certificate", certFile)
	}
	return &Authority{cert: cert, key: key, CertFile: certFile}, nil
}

func firstBlock(data []byte, typ string) *pem.Block {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil || b.Type == typ {
			return b
		}
	}
}

func (ca *Authority) keyPEM() []byte {
	der, _ := x509.MarshalECPrivateKey(ca.key.(*ecdsa.PrivateKey))
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// Fingerprint identifies the CA certificate (its SHA-256), to tell whether what it signed
// earlier is still signed by it.
func (ca *Authority) Fingerprint() string {
	sum := sha256.Sum256(ca.cert.Raw)
	return hex.EncodeToString(sum[:])
}

// IssueFiles signs a new certificate and writes it with its key as dir/name.{crt,key}.
func (ca *Authority) IssueFiles(dir, name string, req Request) (KeyPair, error) {
	pair := KeyPair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	certPEM, keyPEM, err := ca.Issue(req)
	if err != nil {
		return pair, fmt.Errorf("issue %s: %w", name, err)
	}
	return pair, writeFiles(pair, certPEM, keyPEM)
}

// Issue signs a new certificate and returns it and its key as PEM.
func (ca *Authority) Issue(req Request) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: req.CommonName, Organization: req.Organizations},
		// Back-dated a little so that a clock a few seconds behind still accepts it.
		NotBefore:   time.Now().Add(-5 * time.Minute),
		NotAfter:    time.Now().Add(ttl),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:    req.DNSNames,
		IPAddresses: req.IPs,
	}
	if req.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if req.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, err
	}
	return encodePair(der, key)
}

// WriteServiceAccountKey writes (once) the key pair kube-apiserver signs ServiceAccount
// tokens with, as dir/sa.pub and dir/sa.key.
func WriteServiceAccountKey(dir string) (KeyPair, error) {
	pair := KeyPair{CertFile: filepath.Join(dir, "sa.pub"), KeyFile: filepath.Join(dir, "sa.key")}
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
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return pair, err
	}
	return pair, writeFiles(pair, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}

func encodePair(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// writeFiles writes a certificate readable by all and its key readable by the owner only.
// Each file is replaced atomically: components reload certificates while they run and
// must never read a half-written one.
func writeFiles(pair KeyPair, certPEM, keyPEM []byte) error {
	if err := atomicfile.WriteFile(pair.KeyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.WriteFile(pair.CertFile, certPEM, 0o644)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on Linux; a fixed serial would still yield a valid certificate.
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// NotAfter returns when the certificate in a PEM file expires.
func NotAfter(certFile string) (time.Time, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return time.Time{}, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return time.Time{}, fmt.Errorf("%s holds no PEM block", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse %s: %w", certFile, err)
	}
	return cert.NotAfter, nil
}

// Kubeconfig returns a self-contained kubeconfig that reaches server, trusting caPEM, as
// the holder of a client certificate and key.
func Kubeconfig(server string, caPEM, certPEM, keyPEM []byte, user string) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	kc.Contexts["cluster"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: user}
	kc.CurrentContext = "cluster"
	return clientcmd.Write(*kc)
}
