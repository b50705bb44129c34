package apiserver

import (
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
	genericfilters "k8s.io/apiserver/pkg/server/filters"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/proxy"
)

// longRunning classifies requests that may stay open indefinitely, exempt from the
// request timeout: watches of our own API, and requests through the tenant proxy that are
// long-running inside the cluster (watch, exec, attach, logs, port-forward, proxy), which
// it tells by reading the inner path as the cluster's kube-apiserver will. An ordinary
// GET through the proxy keeps the timeout and the usual in-flight limits.
func longRunning() request.LongRunningRequestCheck {
	basic := genericfilters.BasicLongRunningRequestCheck(sets.NewString("watch", "proxy"),
		sets.NewString("attach", "exec", "proxy", "log", "portforward"))
	return func(r *http.Request, info *request.RequestInfo) bool {
		if info == nil || !info.IsResourceRequest || info.APIGroup != v1alpha1.GroupName || info.Resource != "clusters" || info.Subresource != "proxy" {
			return basic(r, info)
		}
		// Parts: clusters, <name>, proxy, <the path inside the cluster>…
		path := "/"
		if len(info.Parts) > 3 {
			path += strings.Join(info.Parts[3:], "/")
		}
		return proxy.LongRunning(r, path)
	}
}
