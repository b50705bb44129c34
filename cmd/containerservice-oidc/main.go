// Command containerservice-oidc is the local stack's OpenID Connect tooling:
//
//	containerservice-oidc serve --users FILE --url https://127.0.0.1:5556 --cert FILE --key FILE
//	containerservice-oidc token --issuer URL --ca FILE --username NAME --password PASSWORD
//	kubectl oidc-login get-token --oidc-issuer-url URL --oidc-client-id ID [--certificate-authority-data B64]
//
// The last is the kubectl credential plugin user kubeconfigs name (the command line of
// kubelogin's get-token, which it stands in for where kubelogin is not installed): the
// binary answers it when installed as kubectl-oidc_login. It logs in with the device
// grant: it prints where to go and which code to enter, or, with --username and
// --password (or CONTAINERSERVICE_USERNAME and CONTAINERSERVICE_PASSWORD), answers the
// form itself. Tokens are cached under ~/.kube/cache/oidc-login until they expire.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ucloudstack/containerservice/pkg/proxy/authn/issuer"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn/login"
)

func main() {
	args := os.Args[1:]
	if strings.HasPrefix(filepath.Base(os.Args[0]), "kubectl-oidc_login") {
		args = append([]string{"oidc-login"}, args...)
	}
	if len(args) == 0 {
		fail(2, "usage: containerservice-oidc serve|token|oidc-login get-token …")
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:])
	case "token":
		err = token(args[1:])
	case "oidc-login":
		if len(args) < 2 || args[1] != "get-token" {
			fail(2, "usage: kubectl oidc-login get-token --oidc-issuer-url URL --oidc-client-id ID")
		}
		err = getToken(args[2:])
	default:
		fail(2, "unknown command %q: serve, token or oidc-login get-token", args[0])
	}
	if err != nil {
		fail(1, "%v", err)
	}
}

func fail(code int, format string, a ...any) {
	fmt.Fprintf(os.Stderr, "containerservice-oidc: "+format+"\n", a...)
	os.Exit(code)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	users := fs.String("users", "", "users file (YAML: users: [{name, password, groups}])")
	issuerURL := fs.String("url", "https://127.0.0.1:5556", "issuer URL; it listens on its host and port")
	cert := fs.String("cert", "", "TLS certificate (PEM)")
	key := fs.String("key", "", "TLS key (PEM)")
	rotate := fs.Duration("rotate-keys-every", 24*time.Hour, "signing key rotation period (0: never)")
	_ = fs.Parse(args)
	u, err := issuer.LoadUsers(*users)
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		return err
	}
	parsed, err := url.Parse(*issuerURL)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", parsed.Host)
	if err != nil {
		return err
	}
	is, err := issuer.Start(issuer.Config{Users: u, Listener: l, URL: *issuerURL, Certificate: pair, RotateEvery: *rotate})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "OIDC issuer %s serving (client %s)\n", is.URL(), issuer.ClientID)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	is.Stop()
	return nil
}

// httpClient trusts the PEM bundle (a file, or base64 data), or the system roots.
func httpClient(caFile, caData string) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var pemData []byte
	var err error
	switch {
	case caData != "":
		if pemData, err = base64.StdEncoding.DecodeString(caData); err != nil {
			return nil, fmt.Errorf("certificate authority data: %w", err)
		}
	case caFile != "":
		if pemData, err = os.ReadFile(caFile); err != nil {
			return nil, err
		}
	}
	if pemData != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("no PEM certificate in the certificate authority")
		}
		cfg.RootCAs = pool
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment}}, nil
}

func credentials(username, password string) *login.Credentials {
	if username == "" {
		username = os.Getenv("CONTAINERSERVICE_USERNAME")
	}
	if password == "" {
		password = os.Getenv("CONTAINERSERVICE_PASSWORD")
	}
	if username == "" {
		return nil
	}
	return &login.Credentials{Username: username, Password: password}
}

// token prints an ID token for a user: the one-line way to get one for curl or a test.
func token(args []string) error {
	fs := flag.NewFlagSet("token", flag.ExitOnError)
	issuerURL := fs.String("issuer", "", "issuer URL")
	clientID := fs.String("client-id", issuer.ClientID, "OIDC client")
	ca := fs.String("ca", "", "CA bundle that verifies the issuer")
	username := fs.String("username", "", "username")
	password := fs.String("password", "", "password")
	_ = fs.Parse(args)
	client, err := httpClient(*ca, "")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t, err := login.Device(ctx, client, *issuerURL, *clientID, credentials(*username, *password), os.Stderr)
	if err != nil {
		return err
	}
	fmt.Println(t.IDToken)
	return nil
}

// getToken is the client.authentication.k8s.io ExecCredential plugin.
func getToken(args []string) error {
	fs := flag.NewFlagSet("get-token", flag.ContinueOnError)
	issuerURL := fs.String("oidc-issuer-url", "", "issuer URL")
	clientID := fs.String("oidc-client-id", "", "OIDC client")
	caFile := fs.String("certificate-authority", "", "CA bundle file that verifies the issuer")
	caData := fs.String("certificate-authority-data", "", "base64 CA bundle that verifies the issuer")
	username := fs.String("username", "", "log in as this user without a prompt (or CONTAINERSERVICE_USERNAME)")
	password := fs.String("password", "", "the user's password (or CONTAINERSERVICE_PASSWORD)")
	_ = fs.String("grant-type", "", "accepted for kubelogin compatibility; the device grant is used")
	var scopes stringList
	fs.Var(&scopes, "oidc-extra-scope", "accepted for kubelogin compatibility")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *issuerURL == "" || *clientID == "" {
		return fmt.Errorf("--oidc-issuer-url and --oidc-client-id are required")
	}
	creds := credentials(*username, *password)
	who := "device"
	if creds != nil {
		who = creds.Username
	}
	sum := sha256.Sum256([]byte(*issuerURL + "\x00" + *clientID + "\x00" + who))
	cacheFile := filepath.Join(cacheDir(), hex.EncodeToString(sum[:16])+".json")
	if t, ok := cached(cacheFile); ok {
		return printCredential(t)
	}
	client, err := httpClient(*caFile, *caData)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t, err := login.Device(ctx, client, *issuerURL, *clientID, creds, os.Stderr)
	if err != nil {
		return err
	}
	if data, err := json.Marshal(t); err == nil && os.MkdirAll(filepath.Dir(cacheFile), 0o700) == nil {
		_ = os.WriteFile(cacheFile, data, 0o600)
	}
	return printCredential(t)
}

func cacheDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "oidc-login")
	}
	return filepath.Join(home, ".kube", "cache", "oidc-login")
}

func cached(file string) (*login.Token, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, false
	}
	var t login.Token
	if json.Unmarshal(data, &t) != nil || time.Until(t.Expiry) < time.Minute {
		return nil, false
	}
	return &t, true
}

func printCredential(t *login.Token) error {
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"apiVersion": "client.authentication.k8s.io/v1",
		"kind":       "ExecCredential",
		"status":     map[string]any{"token": t.IDToken, "expirationTimestamp": t.Expiry.UTC().Format(time.RFC3339)},
	})
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
