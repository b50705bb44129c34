package proxy

import (
	"net/http"
	"strings"
)

// webSocketTokenPrefix marks a bearer token carried in Sec-WebSocket-Protocol (browsers
// cannot set Authorization on a WebSocket).
const webSocketTokenPrefix = "base64url.bearer.authorization.k8s.io."

// scrub removes from h everything through which a caller could speak for someone else
// inside the user cluster, or hand the cluster a credential of theirs:
//
//   - Impersonate-* (user, group, uid, extras): the proxy alone says who the caller is;
//   - X-Remote-*: request-header authentication, for a front proxy only;
//   - Authorization, Proxy-Authorization, Cookie, and bearer tokens in
//     Sec-WebSocket-Protocol: the caller's own credentials for the platform (a console's
//     session cookie among them), which the user cluster must never see;
//   - whatever the Connection header names (other than Upgrade), which a reverse proxy
//     drops after its own headers are set (CVE-2021-31999); Connection itself is left as
//     "Upgrade" on an upgrade and removed otherwise.
//
// Names are compared without regard to letter case, on the raw keys as they came, so a
// header whose key is not in canonical form is removed too.
func scrub(h http.Header) {
	upgrade := false
	for _, v := range headerValues(h, "Connection") {
		for _, token := range strings.Split(v, ",") {
			token = strings.TrimSpace(token)
			if strings.EqualFold(token, "upgrade") {
				upgrade = true
				continue
			}
			if token != "" {
				deleteHeader(h, token)
			}
		}
	}
	for k := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "impersonate-") || strings.HasPrefix(lk, "x-remote-") ||
			lk == "authorization" || lk == "proxy-authorization" || lk == "cookie" {
			delete(h, k)
		}
	}
	deleteHeader(h, "Connection")
	if upgrade {
		h.Set("Connection", "Upgrade")
	}
	var protocols []string
	for _, v := range headerValues(h, "Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" && !strings.HasPrefix(strings.ToLower(p), webSocketTokenPrefix) {
				protocols = append(protocols, p)
			}
		}
	}
	deleteHeader(h, "Sec-WebSocket-Protocol")
	if len(protocols) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(protocols, ", "))
	}
}

// headerValues returns the values of every key equal to name in any letter case.
func headerValues(h http.Header, name string) []string {
	var out []string
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			out = append(out, vs...)
		}
	}
	return out
}

// deleteHeader removes every key equal to name in any letter case.
func deleteHeader(h http.Header, name string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
}
