package stack

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn/issuer"
)

// startIssuer runs the local OIDC issuer (in this process) on its loopback port and
// writes the two authentication configurations that trust it: the host kube-apiserver's
// (which also refuses system: names with CEL rules) and containerservice-apiserver's
// (which always refuses them).
func (s *Stack) startIssuer() error {
	if s.cfg.Users == nil {
		return nil
	}
	port := s.ports["oidc-issuer"]
	pair, err := s.ca.IssueFiles(s.pkiDir, "oidc-issuer", pki.Request{CommonName: "oidc-issuer", Server: true,
		DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("listen for the OIDC issuer: %w", err)
	}
	url := "https://127.0.0.1:" + strconv.Itoa(port)
	s.progress("starting the OIDC issuer on %s", url)
	if s.issuer, err = issuer.Start(issuer.Config{Users: s.cfg.Users, Listener: l, URL: url, Certificate: cert}); err != nil {
		l.Close()
		return err
	}
	indent := func(pem []byte) string {
		return "      " + strings.ReplaceAll(strings.TrimSpace(string(pem)), "\n", "\n      ")
	}
	jwt := fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: %s
    audiences: [%s]
    certificateAuthority: |
%s
  claimMappings:
    username: {claim: sub, prefix: ""}
    groups: {claim: groups, prefix: ""}
`, url, issuer.ClientID, indent(s.ca.CertPEM()))
	host := jwt + `  userValidationRules:
  - {expression: "!user.username.startsWith('system:')", message: "names starting with system: are reserved"}
  - {expression: "user.groups.all(g, !g.startsWith('system:'))", message: "groups starting with system: are reserved"}
`
	if err := os.WriteFile(s.hostAuthnConfig(), []byte(host), 0o600); err != nil {
		return err
	}
	return os.WriteFile(s.serverAuthnConfig(), []byte(jwt), 0o600)
}

func (s *Stack) hostAuthnConfig() string {
	return filepath.Join(s.cfg.StateDir, "host-authentication.yaml")
}
func (s *Stack) serverAuthnConfig() string {
	return filepath.Join(s.cfg.StateDir, "containerservice-authentication.yaml")
}

// Issuer is the local OIDC issuer, or nil when the stack runs without users.
func (s *Stack) Issuer() *issuer.Issuer { return s.issuer }

// CAFile is the stack's CA: it signed the host kube-apiserver's and the issuer's serving
// certificates.
func (s *Stack) CAFile() string { return s.ca.CertFile }
