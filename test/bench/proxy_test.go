package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ucloudstack/containerservice/cmd/containerservice-local/stack"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn/issuer"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn/login"
	"github.com/ucloudstack/containerservice/test/framework"
)

// BenchmarkProxy compares, in one run, three ways into a user cluster: straight to its
// kube-apiserver (a break-glass certificate), through our proxy (an OIDC token, straight
// at containerservice-apiserver), and through the host's aggregator and our proxy (the
// path a user kubeconfig takes): GET latency, LIST of 1000 pods, watch event latency, and
// GET throughput with 8 and 32 concurrent clients.
//
//	go test -run '^$' -bench Proxy -benchtime 1x ./test/bench/
func BenchmarkProxy(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	env := startStack(ctx, b, stack.Config{Users: &issuer.Users{Users: []issuer.User{{Name: "alice@example.com", Password: "alice"}}}})
	defer env.Stop()
	if _, err := env.Kubectl(ctx, nil, "create", "rolebinding", "alice", "-n", "bench", "--clusterrole=containerservice:tenant-member", "--user=alice@example.com"); err != nil {
		b.Fatal(err)
	}
	api := env.CS.ContainerserviceV1alpha1().Clusters("bench")
	if _, err := api.Create(ctx, &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: v1alpha1.ClusterSpec{Administrators: []v1alpha1.Subject{{Kind: v1alpha1.SubjectKindUser, Name: "alice@example.com"}}}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	poll(ctx, b, "the cluster Ready", 200*time.Millisecond, func() bool {
		c, err := api.Get(ctx, "p", metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ClusterConditionReady)
	})

	seconds := int64(3600)
	resp, err := api.CreateAdminKubeconfig(ctx, "p", &v1alpha1.AdminKubeconfigRequest{Spec: v1alpha1.AdminKubeconfigRequestSpec{
		ExpirationSeconds: &seconds, Endpoint: v1alpha1.EndpointInternal}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	direct, err := clientcmd.RESTConfigFromKubeConfig(resp.Status.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	token := idTokenFor(ctx, b, env, "alice@example.com", "alice")
	proxyPath := "/apis/containerservice.ucloudstack.io/v1alpha1/namespaces/bench/clusters/p/proxy"
	server, err := env.DirectConfig()
	if err != nil {
		b.Fatal(err)
	}
	viaProxy := rest.AnonymousClientConfig(server)
	viaProxy.Host, viaProxy.BearerToken = server.Host+proxyPath, token
	viaHost := rest.AnonymousClientConfig(env.AdminConfig)
	viaHost.Host, viaHost.BearerToken = env.AdminConfig.Host+proxyPath, token
	paths := []struct {
		name string
		cfg  *rest.Config
	}{{"direct", direct}, {"proxy", viaProxy}, {"host-proxy", viaHost}}
	for _, p := range paths { // measure the paths, not client-go's rate limiter
		p.cfg.QPS, p.cfg.Burst = 10000, 10000
	}

	// 1000 pods to list (they stay Pending: the cluster has no nodes), once the cluster's
	// controller manager made the default ServiceAccount they need.
	kube := kubernetes.NewForConfigOrDie(direct)
	poll(ctx, b, "the default ServiceAccount", 100*time.Millisecond, func() bool {
		_, err := kube.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < 1000; i += 8 {
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p" + strconv.Itoa(i)},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1"}}}}
				if _, err := kube.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	type figures struct {
		p50, p99, list, watch time.Duration
		rps8, rps32           float64
		// serverCPU and apiserverCPU are the CPU time containerservice-apiserver and the
		// user kube-apiserver spent per GET with 32 clients.
		serverCPU, apiserverCPU time.Duration
	}
	apiserverPid := 0
	for pid, bin := range env.ClusterProcesses("bench", "p") {
		if bin == "kube-apiserver" {
			apiserverPid = pid
		}
	}
	if apiserverPid == 0 {
		b.Fatal("no kube-apiserver process for the cluster")
	}
	// Every measure is taken in turns, path after path, so that whatever else the machine
	// does meanwhile weighs on the three alike.
	gets := map[string]func() error{}
	clients := map[string]kubernetes.Interface{}
	for _, p := range paths {
		client, err := rest.HTTPClientFor(p.cfg)
		if err != nil {
			b.Fatal(err)
		}
		gets[p.name] = func() error {
			resp, err := client.Get(p.cfg.Host + "/api/v1/namespaces/default")
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET answered %d", resp.StatusCode)
			}
			return nil
		}
		clients[p.name] = kubernetes.NewForConfigOrDie(p.cfg)
		for range 50 { // warm connections and caches
			if err := gets[p.name](); err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
		}
	}
	lat, lists := map[string][]time.Duration{}, map[string][]time.Duration{}
	for range 1000 {
		for _, p := range paths {
			start := time.Now()
			if err := gets[p.name](); err != nil {
				b.Fatal(err)
			}
			lat[p.name] = append(lat[p.name], time.Since(start))
		}
	}
	for range 15 {
		for _, p := range paths {
			start := time.Now()
			l, err := clients[p.name].CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
			if err != nil || len(l.Items) != 1000 {
				b.Fatalf("%s list: %v", p.name, err)
			}
			lists[p.name] = append(lists[p.name], time.Since(start))
		}
	}
	results := map[string]figures{}
	for _, p := range paths {
		slices.Sort(lat[p.name])
		slices.Sort(lists[p.name])
		l := lat[p.name]
		results[p.name] = figures{p50: l[len(l)/2], p99: l[len(l)*99/100], list: lists[p.name][len(lists[p.name])/2],
			watch: configMapWatchLatency(ctx, b, clients[p.name], p.name)}
	}
	// Throughput: five rounds of 1 s per path in turns; CPU time of the two servers over
	// the path's 32-client rounds.
	for _, clientsN := range []int{8, 32} {
		done := map[string]float64{}
		cpuServer, cpuAPIServer := map[string]time.Duration{}, map[string]time.Duration{}
		for range throughputSeconds {
			for _, p := range paths {
				server, apiserver := cpuTime(b, env.ServerPid()), cpuTime(b, apiserverPid)
				done[p.name] += throughput(gets[p.name], clientsN, time.Second)
				cpuServer[p.name] += cpuTime(b, env.ServerPid()) - server
				cpuAPIServer[p.name] += cpuTime(b, apiserverPid) - apiserver
			}
		}
		for _, p := range paths {
			f := results[p.name]
			rate := done[p.name] / throughputSeconds
			if clientsN == 8 {
				f.rps8 = rate
			} else {
				f.rps32 = rate
				requests := time.Duration(done[p.name])
				f.serverCPU, f.apiserverCPU = cpuServer[p.name]/requests, cpuAPIServer[p.name]/requests
			}
			results[p.name] = f
		}
	}

	d := results["direct"]
	fmt.Printf("| measure | direct | through our proxy | host aggregator + proxy | proxy added / ratio |\n|---|---|---|---|---|\n")
	ms := func(t time.Duration) string { return fmt.Sprintf("%.2f ms", float64(t.Microseconds())/1000) }
	for _, row := range []struct {
		name string
		get  func(figures) time.Duration
	}{{"GET p50", func(f figures) time.Duration { return f.p50 }}, {"GET p99", func(f figures) time.Duration { return f.p99 }},
		{"LIST 1000 pods (median of 15)", func(f figures) time.Duration { return f.list }}, {"watch event (median)", func(f figures) time.Duration { return f.watch }}} {
		p, h := results["proxy"], results["host-proxy"]
		fmt.Printf("| %s | %s | %s | %s | +%s (%.2f×) |\n", row.name, ms(row.get(d)), ms(row.get(p)), ms(row.get(h)), ms(row.get(p)-row.get(d)),
			float64(row.get(d))/float64(row.get(p)))
	}
	for _, row := range []struct {
		name string
		get  func(figures) float64
	}{{"GET throughput, 8 clients", func(f figures) float64 { return f.rps8 }}, {"GET throughput, 32 clients", func(f figures) float64 { return f.rps32 }}} {
		p, h := results["proxy"], results["host-proxy"]
		fmt.Printf("| %s | %.0f/s | %.0f/s | %.0f/s | %.0f %% of direct |\n", row.name, row.get(d), row.get(p), row.get(h), 100*row.get(p)/row.get(d))
	}
	for _, row := range []struct {
		name string
		get  func(figures) time.Duration
	}{{"containerservice-apiserver CPU per GET (32 clients)", func(f figures) time.Duration { return f.serverCPU }},
		{"user kube-apiserver CPU per GET (32 clients)", func(f figures) time.Duration { return f.apiserverCPU }}} {
		fmt.Printf("| %s | %s | %s | %s | |\n", row.name, us(row.get(d)), us(row.get(results["proxy"])), us(row.get(results["host-proxy"])))
	}
	b.ReportMetric(float64((results["proxy"].p50-d.p50).Microseconds())/1000, "ms-added-p50")
	b.ReportMetric(100*results["proxy"].rps32/d.rps32, "pct-throughput-32")
}

func us(t time.Duration) string { return fmt.Sprintf("%d µs", t.Microseconds()) }

// cpuTime is the CPU time (user and system) a process has used so far.
func cpuTime(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: state is the first, utime
	// and stime the 12th and 13th, in clock ticks (USER_HZ, 100 on Linux).
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// throughputSeconds is how many 1 s rounds each path gets.
const throughputSeconds = 5

// throughput runs get from n clients for d and returns the number of successful requests.
func throughput(get func() error, n int, d time.Duration) float64 {
	var done atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if get() == nil {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(done.Load())
}

// configMapWatchLatency is the median time from creating a ConfigMap to its ADDED event.
func configMapWatchLatency(ctx context.Context, b *testing.B, kc kubernetes.Interface, name string) time.Duration {
	w, err := kc.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatalf("%s watch: %v", name, err)
	}
	defer w.Stop()
	var lat []time.Duration
	for i := range 100 {
		cmName := fmt.Sprintf("w-%s-%d", name, i)
		start := time.Now()
		if _, err := kc.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cmName}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		for ev := range w.ResultChan() {
			if cm, ok := ev.Object.(*corev1.ConfigMap); ok && ev.Type == watch.Added && cm.Name == cmName {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return lat[len(lat)/2]
}

// idTokenFor logs a person in at the stack's issuer with the device grant.
func idTokenFor(ctx context.Context, b *testing.B, env *framework.Env, user, password string) string {
	ca, err := os.ReadFile(env.CAFile())
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	tok, err := login.Device(ctx, client, env.Issuer().URL(), issuer.ClientID, &login.Credentials{Username: user, Password: password}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return tok.IDToken
}
