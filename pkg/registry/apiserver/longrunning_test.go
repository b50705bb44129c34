package apiserver

import (
	"net/http/httptest"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
)

func TestLongRunningThroughTheProxy(t *testing.T) {
	const proxy = "/apis/containerservice.ucloudstack.io/v1alpha1/namespaces/acme/clusters/prod/proxy"
	resolver := &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}
	check := longRunning()
	for path, want := range map[string]bool{
		"/apis/containerservice.ucloudstack.io/v1alpha1/namespaces/acme/clusters?watch=true": true,
		"/apis/containerservice.ucloudstack.io/v1alpha1/namespaces/acme/clusters":            false,
		proxy + "/api/v1/namespaces/default/pods?watch=true":                                 true,
		proxy + "/api/v1/namespaces/default/pods/web/exec?command=sh":                        true,
		proxy + "/api/v1/namespaces/default/pods/web/attach":                                 true,
		proxy + "/api/v1/namespaces/default/pods/web/log?follow=true":                        true,
		proxy + "/api/v1/namespaces/default/pods/web/portforward":                            true,
		proxy + "/api/v1/namespaces/default/services/web/proxy/":                             true,
		proxy + "/api/v1/namespaces/default/pods":                                            false,
		proxy + "/api/v1/namespaces/default/pods/web":                                        false,
		proxy + "/apis/apps/v1/deployments?watch=1":                                          true,
		proxy:       false,
		proxy + "/": false,
	} {
		req := httptest.NewRequest("GET", path, nil)
		info, err := resolver.NewRequestInfo(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := check(req, info); got != want {
			t.Errorf("%s: long-running %v, want %v", path, got, want)
		}
	}
}
