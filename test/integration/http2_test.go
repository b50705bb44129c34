package integration

import (
	"crypto/tls"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"k8s.io/client-go/rest"
)

// TestHTTP2Streams checks what a client connecting straight to containerservice-apiserver
// is told in the server's HTTP/2 SETTINGS: at least 1000 concurrent streams on one
// connection (as kube-apiserver allows), so that many watches through the proxy share it.
func TestHTTP2Streams(t *testing.T) {
	cfg, err := env.DirectConfig()
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig.NextProtos = []string{http2.NextProtoTLS}
	conn, err := tls.Dial("tcp", cfg.Host[len("https://"):], tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().NegotiatedProtocol; got != http2.NextProtoTLS {
		t.Fatalf("negotiated %q, want HTTP/2", got)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	framer := http2.NewFramer(conn, conn)
	if err := framer.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for {
		frame, err := framer.ReadFrame()
		if err != nil {
			t.Fatalf("no SETTINGS from the server: %v", err)
		}
		settings, ok := frame.(*http2.SettingsFrame)
		if !ok || settings.IsAck() {
			continue
		}
		streams, ok := settings.Value(http2.SettingMaxConcurrentStreams)
		if !ok || streams < 1000 {
			t.Fatalf("the server allows %d concurrent streams per connection (set: %v), want at least 1000", streams, ok)
		}
		return
	}
}
