package local

import (
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
)

// componentGOGC is the GOGC of every control plane process.
const componentGOGC = 50

// apiserverStopGrace bounds kube-apiserver's graceful stop. Left alone it lingers long
// after it stopped listening; everything it holds is in etcd, so a short grace loses
// nothing and keeps rotations and deletions quick.
const apiserverStopGrace = 5 * time.Second

// components returns the four processes of a cluster's control plane, in start order.
// kube-apiserver listens on bindAddress; every other component on loopback only.
func components(binDir string, l layout, c *v1alpha1.Cluster, ports map[string]int, bindAddress string) map[string]supervisor.Component {
	url := func(port string) string { return "https://127.0.0.1:" + strconv.Itoa(ports[port]) }
	p := l.pki
	services := strings.Join(c.Spec.Network.ServiceCIDRs, ",")
	name := c.Namespace + "-" + c.Name
	bin := func(b string) string { return filepath.Join(binDir, b) }

	// An idle control plane's heap is mostly garbage waiting for the next collection; a
	// lower GOGC collects sooner and keeps several clusters per machine affordable.
	gc := []string{"GOGC=" + strconv.Itoa(componentGOGC)}
	return map[string]supervisor.Component{
		provisioner.Etcd: {Name: "etcd", Binary: bin("etcd"), LogDir: l.logs(), Env: gc, Args: []string{
			"--name=" + name,
			"--data-dir=" + l.etcdData(),
			"--listen-client-urls=" + url(portEtcdClient), "--advertise-client-urls=" + url(portEtcdClient),
			"--listen-peer-urls=" + url(portEtcdPeer), "--initial-advertise-peer-urls=" + url(portEtcdPeer),
			"--initial-cluster=" + name + "=" + url(portEtcdPeer),
			// Only certificates from this cluster's etcd CA get in, clients and peers alike.
			"--cert-file=" + p("etcd-server.crt"), "--key-file=" + p("etcd-server.key"),
			"--trusted-ca-file=" + p("etcd-ca.crt"), "--client-cert-auth=true",
			"--peer-cert-file=" + p("etcd-peer.crt"), "--peer-key-file=" + p("etcd-peer.key"),
			"--peer-trusted-ca-file=" + p("etcd-ca.crt"), "--peer-client-cert-auth=true",
			"--log-level=warn",
			// A smaller snapshot interval keeps an idle member's memory down.
			"--snapshot-count=5000",
		}},
		provisioner.APIServer: {Name: "kube-apiserver", Binary: bin("kube-apiserver"), LogDir: l.logs(), Env: gc, StopGrace: apiserverStopGrace, Args: []string{
			"--etcd-servers=" + url(portEtcdClient),
			"--etcd-cafile=" + p("etcd-ca.crt"), "--etcd-certfile=" + p("apiserver-etcd-client.crt"), "--etcd-keyfile=" + p("apiserver-etcd-client.key"),
			"--bind-address=" + bindAddress, "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(ports[portAPIServer]),
			"--tls-cert-file=" + p("apiserver.crt"), "--tls-private-key-file=" + p("apiserver.key"),
			"--client-ca-file=" + p("client-ca.crt"),
			"--kubelet-client-certificate=" + p("apiserver-kubelet-client.crt"), "--kubelet-client-key=" + p("apiserver-kubelet-client.key"),
			"--service-account-issuer=https://kubernetes.default.svc",
			"--service-account-key-file=" + p("sa.pub"), "--service-account-signing-key-file=" + p("sa.key"),
			"--service-cluster-ip-range=" + services,
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--requestheader-client-ca-file=" + p("front-proxy-ca.crt"),
			"--requestheader-allowed-names=front-proxy-client",
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file=" + p("front-proxy-client.crt"), "--proxy-client-key-file=" + p("front-proxy-client.key"),
			// Loopback addresses may not be endpoints of the kubernetes Service.
			"--endpoint-reconciler-type=none",
			"--profiling=false",
		}},
		provisioner.ControllerManager: {Name: "kube-controller-manager", Binary: bin("kube-controller-manager"), LogDir: l.logs(), Env: gc, Args: []string{
			"--kubeconfig=" + l.kubeconfig("controller-manager"),
			"--authentication-kubeconfig=" + l.kubeconfig("controller-manager"),
			"--authorization-kubeconfig=" + l.kubeconfig("controller-manager"),
			"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(ports[portKCM]),
			"--tls-cert-file=" + p("controller-manager-serving.crt"), "--tls-private-key-file=" + p("controller-manager-serving.key"),
			"--client-ca-file=" + p("client-ca.crt"),
			// Client certificates from the CSR API (users', kubelets') come from the CA
			// kube-apiserver trusts for clients, so that rotation revokes them too;
			// serving certificates from the cluster CA.
			"--cluster-signing-kube-apiserver-client-cert-file=" + p("client-ca.crt"),
			"--cluster-signing-kube-apiserver-client-key-file=" + p("client-ca.key"),
			"--cluster-signing-kubelet-client-cert-file=" + p("client-ca.crt"),
			"--cluster-signing-kubelet-client-key-file=" + p("client-ca.key"),
			"--cluster-signing-kubelet-serving-cert-file=" + p("ca.crt"),
			"--cluster-signing-kubelet-serving-key-file=" + p("ca.key"),
			"--cluster-signing-legacy-unknown-cert-file=" + p("ca.crt"),
			"--cluster-signing-legacy-unknown-key-file=" + p("ca.key"),
			"--root-ca-file=" + p("ca.crt"),
			"--service-account-private-key-file=" + p("sa.key"),
			"--use-service-account-credentials=true",
			"--allocate-node-cidrs=true",
			"--cluster-cidr=" + strings.Join(c.Spec.Network.PodCIDRs, ","),
			"--service-cluster-ip-range=" + services,
			"--leader-elect=false",
			"--profiling=false",
		}},
		provisioner.Scheduler: {Name: "kube-scheduler", Binary: bin("kube-scheduler"), LogDir: l.logs(), Env: gc, Args: []string{
			"--kubeconfig=" + l.kubeconfig("scheduler"),
			"--authentication-kubeconfig=" + l.kubeconfig("scheduler"),
			"--authorization-kubeconfig=" + l.kubeconfig("scheduler"),
			"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(ports[portScheduler]),
			"--tls-cert-file=" + p("scheduler-serving.crt"), "--tls-private-key-file=" + p("scheduler-serving.key"),
			"--client-ca-file=" + p("client-ca.crt"),
			"--leader-elect=false",
			"--profiling=false",
		}},
	}
}
