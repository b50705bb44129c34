package local

import (
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/driver/local/kwok"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
)

// componentGOGC is the GOGC of every control plane process. An idle control plane's heap
// is mostly garbage waiting for the next collection; a lower GOGC collects sooner and
// keeps several clusters per machine affordable.
const componentGOGC = 50

// apiserverStopGrace bounds kube-apiserver's graceful stop. Left alone it lingers long
// after it stopped listening; everything it holds is in etcd, so a short grace loses
// nothing and keeps rotations and deletions quick.
const apiserverStopGrace = 5 * time.Second

// nodeAgent is kwok, the kubelet stand-in that keeps the cluster's nodes Ready and their
// pods Running. It is no part of the control plane's health: it runs only while the
// cluster has nodes (EnsureNodeAgent).
const nodeAgent = "NodeAgent"

// frontComponent is the cluster's front (containerservice-front): it owns the published
// port and forwards each connection to a kube-apiserver that is ready, so that a
// kube-apiserver replaced (renewal, rotation, a new configuration) refuses no one. Its
// health is the APIServer's, probed through it.
const frontComponent = "Front"

// slots is how many kube-apiserver slots a cluster has: the serving one and the spare a
// replacement starts in (surge.go).
const slots = 2

// slotComponent names a kube-apiserver slot in an instance's specs and components.
func slotComponent(slot int) string { return provisioner.APIServer + "-" + strconv.Itoa(slot) }

// legacyAPIServer is the record of the kube-apiserver of a cluster made before the front,
// which listened on the published port itself: stopped at the cluster's next start, so
// that the front can take the port.
const legacyAPIServer = "kube-apiserver"

// allComponents are the processes of a cluster, in start order.
var allComponents = []string{provisioner.Etcd, frontComponent, slotComponent(0), slotComponent(1),
	provisioner.ControllerManager, provisioner.Scheduler, nodeAgent}

// processNames are the components' process (and log and record) names.
var processNames = map[string]string{
	provisioner.Etcd:              "etcd",
	frontComponent:                "containerservice-front",
	slotComponent(0):              "kube-apiserver-0",
	slotComponent(1):              "kube-apiserver-1",
	provisioner.ControllerManager: "kube-controller-manager",
	provisioner.Scheduler:         "kube-scheduler",
	nodeAgent:                     "kwok",
}

// recordNames are the names of every record a cluster's directory may hold, an earlier
// release's included.
func recordNames() []string {
	names := []string{legacyAPIServer}
	for _, c := range allComponents {
		names = append(names, processNames[c])
	}
	return names
}

// componentStopGrace bounds the graceful stop of the other components.
const componentStopGrace = 15 * time.Second

// frontStopGrace bounds the front's stop, which happens only when the whole control plane
// stops: it closes what is still open after frontShutdown.
const (
	frontShutdown  = 2 * time.Second
	frontStopGrace = 5 * time.Second
)

func stopGrace(component string) time.Duration {
	switch component {
	case slotComponent(0), slotComponent(1), legacyAPIServer:
		return apiserverStopGrace
	case frontComponent:
		return frontStopGrace
	}
	return componentStopGrace
}

// Audit log rotation: at most auditLogMaxBackups old files of auditLogMaxSizeMB each,
// kept auditLogMaxAgeDays, next to the cluster's other logs.
const (
	auditLogMaxSizeMB  = 20
	auditLogMaxBackups = 4
	auditLogMaxAgeDays = 30
)

// auditPolicy records who did what to which object (Metadata: never request or response
// bodies, so no Secret leaks into the log), except health checks.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
- level: Metadata
`

// components returns the processes of a cluster: its control plane (kube-apiserver in
// each slot), its front and its node agent. The front listens on bindAddress; every other
// component on loopback only. Each is recorded under the cluster's run/ directory and
// outlives the server.
func components(binDir, frontBinary string, l layout, c *v1alpha1.Cluster, ports map[string]int, bindAddress string) map[string]supervisor.Component {
	specs := componentCommands(binDir, l, c, ports)
	specs[frontComponent] = supervisor.Component{Binary: frontBinary, Args: []string{
		"--config=" + l.frontConfig(), "--status=" + l.frontStatus()}}
	for name, spec := range specs {
		spec.Name = processNames[name]
		spec.LogDir = l.logs()
		spec.Env = []string{"GOGC=" + strconv.Itoa(componentGOGC)}
		if name == frontComponent {
			// The front binds its listener once: where it listens is in its environment,
			// so that another address (a new external host) is a changed command, which
			// restarts an adopted front.
			// One processor: its copying is the kernel's (splice), and an idle front
			// then wakes one thread a second instead of spinning up several.
			spec.Env = append(spec.Env, "GOMAXPROCS=1", "UCS_FRONT_LISTEN="+frontListen(bindAddress, ports))
		}
		if name == nodeAgent {
			// kwok also reads $KWOK_WORKDIR/kwok.yaml or ~/.kwok/kwok.yaml: pointed at the
			// cluster's own directory, no configuration of the server's user (a local
			// exec, say) ever applies to a tenant's nodes.
			// kwok reads its configuration once, at its start: the file's digest in its
			// environment makes a new configuration (an upgrade of the server) a changed
			// command, which restarts an adopted agent.
			spec.Env = append(spec.Env, "HOME="+l.dir, "KWOK_WORKDIR="+l.dir, "UCS_NODE_AGENT_CONFIG="+kwok.Digest())
		}
		spec.StopGrace = stopGrace(name)
		spec.StateFile = l.record(spec.Name)
		specs[name] = spec
	}
	return specs
}

// componentCommands returns the binaries and arguments of the control plane's components
// and the node agent.
func componentCommands(binDir string, l layout, c *v1alpha1.Cluster, ports map[string]int) map[string]supervisor.Component {
	url := func(port string) string { return "https://127.0.0.1:" + strconv.Itoa(ports[port]) }
	p := l.pki
	services := strings.Join(c.Spec.Network.ServiceCIDRs, ",")
	name := c.Namespace + "-" + c.Name
	bin := func(b string) string { return filepath.Join(binDir, b) }

	specs := map[string]supervisor.Component{
		provisioner.Etcd: {Binary: bin("etcd"), Args: []string{
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
		provisioner.ControllerManager: {Binary: bin("kube-controller-manager"), Args: append(servingClient(l, "controller-manager", ports[portKCM]),
			// Client certificates from the CSR API (users', kubelets') come from the CA
			// kube-apiserver trusts for clients, so that rotation revokes them too;
			// serving certificates from the cluster CA.
			"--cluster-signing-kube-apiserver-client-cert-file="+p("client-ca.crt"),
			"--cluster-signing-kube-apiserver-client-key-file="+p("client-ca.key"),
			"--cluster-signing-kubelet-client-cert-file="+p("client-ca.crt"),
			"--cluster-signing-kubelet-client-key-file="+p("client-ca.key"),
			"--cluster-signing-kubelet-serving-cert-file="+p("ca.crt"),
			"--cluster-signing-kubelet-serving-key-file="+p("ca.key"),
			"--cluster-signing-legacy-unknown-cert-file="+p("ca.crt"),
			"--cluster-signing-legacy-unknown-key-file="+p("ca.key"),
			// A cluster admin (a break-glass holder included) can have the CSR API sign a
			// client certificate of any name; capped like break-glass credentials, so that
			// what a revoked holder minted soon expires too. A rotation revokes all of it.
			"--cluster-signing-duration=24h",
			"--root-ca-file="+p("ca.crt"),
			"--service-account-private-key-file="+p("sa.key"),
			"--use-service-account-credentials=true",
			"--allocate-node-cidrs=true",
			"--cluster-cidr="+strings.Join(c.Spec.Network.PodCIDRs, ","),
			"--service-cluster-ip-range="+services,
			"--leader-elect=false",
			"--profiling=false",
		)},
		provisioner.Scheduler: {Binary: bin("kube-scheduler"), Args: append(servingClient(l, "scheduler", ports[portScheduler]),
			"--leader-elect=false",
			"--profiling=false",
		)},
		nodeAgent: {Binary: bin("kwok"), Args: []string{
			"--kubeconfig=" + l.kubeconfig("node-agent"),
			"--config=" + l.nodeAgentConfig(),
			// The nodes the platform made, and no other: a node someone registers by hand
			// is not taken over.
			"--manage-nodes-with-label-selector=" + NodeAgentSelector,
			"--node-ip=127.0.0.1", "--node-name=localhost",
			"--node-port=" + strconv.Itoa(ports[portNodeAgent]),
			"--server-address=127.0.0.1:" + strconv.Itoa(ports[portNodeAgent]),
			"--tls-cert-file=" + p("node-agent-serving.crt"), "--tls-private-key-file=" + p("node-agent-serving.key"),
		}},
	}
	for slot := range slots {
		specs[slotComponent(slot)] = apiserverCommand(binDir, l, c, ports, slot)
	}
	return specs
}

// apiserverCommand returns the command of kube-apiserver in a slot.
func apiserverCommand(binDir string, l layout, c *v1alpha1.Cluster, ports map[string]int, slot int) supervisor.Component {
	url := func(port string) string { return "https://127.0.0.1:" + strconv.Itoa(ports[port]) }
	p := l.pki
	services := strings.Join(c.Spec.Network.ServiceCIDRs, ",")
	bin := func(b string) string { return filepath.Join(binDir, b) }
	return supervisor.Component{Binary: bin("kube-apiserver"), Args: []string{
		"--etcd-servers=" + url(portEtcdClient),
		"--etcd-cafile=" + p("etcd-ca.crt"), "--etcd-certfile=" + p("apiserver-etcd-client.crt"), "--etcd-keyfile=" + p("apiserver-etcd-client.key"),
		// Reached through the front only.
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(ports[slotPorts[slot]]),
		"--tls-cert-file=" + p("apiserver.crt"), "--tls-private-key-file=" + p("apiserver.key"),
		"--client-ca-file=" + p("client-ca.crt"),
		"--kubelet-client-certificate=" + p("apiserver-kubelet-client.crt"), "--kubelet-client-key=" + p("apiserver-kubelet-client.key"),
		// Kubelets (the node agent) serve with certificates from the cluster CA: exec,
		// logs and port-forward reach only them.
		"--kubelet-certificate-authority=" + p("ca.crt"),
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
		// Who did what, break-glass users by name; rotated and size-capped.
		"--audit-policy-file=" + l.auditPolicy(),
		"--audit-log-path=" + filepath.Join(l.logs(), "audit.log"),
		"--audit-log-maxsize=" + strconv.Itoa(auditLogMaxSizeMB),
		"--audit-log-maxbackup=" + strconv.Itoa(auditLogMaxBackups),
		"--audit-log-maxage=" + strconv.Itoa(auditLogMaxAgeDays),
		"--audit-log-mode=batch",
		// Requests that reach it while it stops (on a connection opened before the
		// front drained it) are answered 429 with Retry-After, which clients retry,
		// rather than failed.
		"--shutdown-send-retry-after=true",
	}}
}

// servingClient are the first flags of a component that is a client of the cluster's
// kube-apiserver and serves its health and metrics on loopback (kube-controller-manager,
// kube-scheduler): its kubeconfig, for the API and for delegated authentication and
// authorization, and its serving certificate. Their order is part of the command line an
// adopted process is compared with, so it does not change.
func servingClient(l layout, name string, port int) []string {
	return []string{
		"--kubeconfig=" + l.kubeconfig(name),
		"--authentication-kubeconfig=" + l.kubeconfig(name),
		"--authorization-kubeconfig=" + l.kubeconfig(name),
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + l.pki(name+"-serving.crt"), "--tls-private-key-file=" + l.pki(name+"-serving.key"),
		"--client-ca-file=" + l.pki("client-ca.crt"),
	}
}

// NodeAgentSelector selects the nodes of a user cluster the local driver's node agent
// keeps: those the platform made (the node controller labels every node it makes so).
const NodeAgentSelector = v1alpha1.ManagedByLabel + "=" + v1alpha1.ManagedByValue
