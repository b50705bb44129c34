package proxy

import (
	"net/http"
	"net/url"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
)

var (
	// kubeLongRunning is kube-apiserver's own classification: watches, and the
	// subresources that stream or upgrade.
	kubeLongRunning = genericfilters.BasicLongRunningRequestCheck(sets.NewString("watch", "proxy"),
		sets.NewString("attach", "exec", "proxy", "log", "portforward"))
	kubeRequestInfo = &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
)

// LongRunning tells whether a request (its method, query and headers) to path inside a
// user cluster stays open there (watch, exec, attach, logs, port-forward, proxy), reading
// the path as the cluster's kube-apiserver will.
func LongRunning(r *http.Request, path string) bool {
	inner := &http.Request{Method: r.Method, URL: &url.URL{Path: path, RawQuery: r.URL.RawQuery}, Header: r.Header}
	info, err := kubeRequestInfo.NewRequestInfo(inner)
	if err != nil {
		return false
	}
	return kubeLongRunning(inner, info)
}

// InnerNamespace is the namespace a path inside a user cluster addresses, if any.
func InnerNamespace(path string) string {
	info, err := kubeRequestInfo.NewRequestInfo(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: path}})
	if err != nil {
		return ""
	}
	return info.Namespace
}

// batchedWriter drops the reverse proxy's flushes. The reverse proxy flushes after every
// read of a response without a length, which kube-apiserver's lists are (it streams
// their items): through a proxy that turns one LIST into hundreds of small HTTP/2 frames.
// A response that is not long-running is complete when the handler returns, which is
// when the server flushes it, so it goes out in full buffers as it would from the
// cluster's own kube-apiserver. Long-running responses (a watch, logs -f) are not wrapped
// and are flushed as they come.
type batchedWriter struct{ http.ResponseWriter }

// Flush does nothing: the server flushes when the handler returns.
func (batchedWriter) Flush() {}

// Unwrap lets http.ResponseController reach the server's writer (deadlines).
func (w batchedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
