package main

// No cluster, systemd or Docker engine runs here: these tests read the
// deployment files under deploy/ and the Dockerfile and check their wiring
// against the real command tree (flags, config resolution, defaults),
// which is where such files silently rot.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tailer-backup/tailer/internal/config"
)

const deployDir = "../../deploy"

// --- a small subset of the Kubernetes API, as much as the checks need ---

type k8sDoc struct {
	File       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Resources  []string          `yaml:"resources"` // Kustomization
	Spec       yaml.Node         `yaml:"spec"`
}

type workloadSpec struct {
	Replicas    *int   `yaml:"replicas"`
	ServiceName string `yaml:"serviceName"`
	Selector    struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec podSpec `yaml:"spec"`
	} `yaml:"template"`
	VolumeClaimTemplates []struct {
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
	} `yaml:"volumeClaimTemplates"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int        `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               secCtx      `yaml:"securityContext"`
	Containers                    []container `yaml:"containers"`
	InitContainers                []container `yaml:"initContainers"`
	Volumes                       []volume    `yaml:"volumes"`
}

type secCtx struct {
	RunAsUser  *int64 `yaml:"runAsUser"`
	RunAsGroup *int64 `yaml:"runAsGroup"`
	FSGroup    *int64 `yaml:"fsGroup"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
			FieldRef        *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		SecretRef    *keyRef `yaml:"secretRef"`
		ConfigMapRef *keyRef `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	VolumeMounts []mount `yaml:"volumeMounts"`
	Liveness     *probe  `yaml:"livenessProbe"`
	Readiness    *probe  `yaml:"readinessProbe"`
	Resources    struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext secCtx `yaml:"securityContext"`
}

type mount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	SubPath   string `yaml:"subPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"` // a number or a port name
	} `yaml:"httpGet"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name  string `yaml:"name"`
		Items []struct {
			Key  string `yaml:"key"`
			Path string `yaml:"path"`
		} `yaml:"items"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
	} `yaml:"secret"`
	EmptyDir *struct{}  `yaml:"emptyDir"`
	PVC      *yaml.Node `yaml:"persistentVolumeClaim"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string    `yaml:"name"`
		Port       int       `yaml:"port"`
		TargetPort yaml.Node `yaml:"targetPort"`
	} `yaml:"ports"`
}

// manifests reads every YAML document of deploy/kubernetes.
func manifests(t *testing.T) (docs []k8sDoc, files []string) {
	t.Helper()
	dir := filepath.Join(deployDir, "kubernetes")
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Base(name))
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var d k8sDoc
			if err := dec.Decode(&d); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if d.Kind == "" {
				t.Fatalf("%s: a document without kind", name)
			}
			d.File = filepath.Base(name)
			docs = append(docs, d)
		}
	}
	return docs, files
}

func find(docs []k8sDoc, kind, name string) *k8sDoc {
	for i := range docs {
		if docs[i].Kind == kind && docs[i].Metadata.Name == name {
			return &docs[i]
		}
	}
	return nil
}

// inside reports whether p is dir or below it (both clean and absolute).
func inside(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// mountOf returns the mount of c holding the absolute path p (the deepest
// one) and p's path inside that volume.
func mountOf(c container, p string) (mount, string, bool) {
	var best mount
	found := false
	for _, m := range c.VolumeMounts {
		if inside(path.Clean(p), path.Clean(m.MountPath)) && (!found || len(m.MountPath) > len(best.MountPath)) {
			best, found = m, true
		}
	}
	if !found {
		return mount{}, "", false
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(path.Clean(p), path.Clean(best.MountPath)), "/")
	return best, path.Join("/", best.SubPath, rel), true
}

// portOf resolves a probe's or service's port (a number or a name) in c.
func portOf(c container, n yaml.Node) int {
	if p, err := strconv.Atoi(n.Value); err == nil {
		return p
	}
	for _, p := range c.Ports {
		if p.Name == n.Value {
			return p.ContainerPort
		}
	}
	return -1
}

func userOf(pod podSpec, c container) *int64 {
	if c.SecurityContext.RunAsUser != nil {
		return c.SecurityContext.RunAsUser
	}
	return pod.SecurityContext.RunAsUser
}

// TestKubernetesSidecar checks the wiring of deploy/kubernetes: Stalwart
// and tailer share the data volume; tailer reads the very store Stalwart
// writes (through Stalwart's own config.json) and keeps --scratch and its
// spool on that volume, on the same mount as the store (hard links) and
// outside it; --listen is reachable by the kubelet and the probes hit
// /healthz and /readyz on its port; every Secret and ConfigMap key used
// exists; resources are limited. tailer's effective settings come from
// the real 'run' command resolving the container's args, environment and
// mounted config file.
func TestKubernetesSidecar(t *testing.T) {
	docs, files := manifests(t)

	// kustomization.yaml lists every other manifest, and only those.
	var kust *k8sDoc
	for i := range docs {
		if docs[i].Kind == "Kustomization" {
			kust = &docs[i]
		}
	}
	if kust == nil {
		t.Fatal("no kustomization.yaml")
	}
	others := slices.DeleteFunc(slices.Clone(files), func(f string) bool { return f == kust.File })
	res := slices.Clone(kust.Resources)
	slices.Sort(res)
	slices.Sort(others)
	if !slices.Equal(res, others) {
		t.Errorf("kustomization resources %v, manifests %v", res, others)
	}

	var (
		ws      workloadSpec
		wl      *k8sDoc
		counted int
	)
	for i := range docs {
		if docs[i].Kind == "StatefulSet" || docs[i].Kind == "Deployment" {
			wl = &docs[i]
			counted++
		}
	}
	if counted != 1 {
		t.Fatalf("want one StatefulSet or Deployment, found %d", counted)
	}
	if err := wl.Spec.Decode(&ws); err != nil {
		t.Fatal(err)
	}
	pod := ws.Template.Spec
	if ws.Replicas != nil && *ws.Replicas > 1 {
		t.Errorf("replicas %d: one Stalwart per RocksDB store", *ws.Replicas)
	}
	for k, v := range ws.Selector.MatchLabels {
		if ws.Template.Metadata.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod template's labels", k, v)
		}
	}

	var stalwart, tailer *container
	all := append(slices.Clone(pod.Containers), pod.InitContainers...)
	for i := range all {
		switch {
		case strings.Contains(all[i].Image, "stalwartlabs/stalwart"):
			stalwart = &all[i]
		case all[i].Name == "tailer" || strings.Contains(all[i].Image, "tailer"):
			tailer = &all[i]
		}
	}
	if stalwart == nil || tailer == nil {
		t.Fatalf("want a Stalwart and a tailer container in %s", wl.File)
	}

	// Volumes: the pod's, plus the StatefulSet's claims (persistent).
	volumes := map[string]volume{}
	persistent := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		persistent[v.Name] = v.PVC != nil
	}
	for _, c := range ws.VolumeClaimTemplates {
		volumes[c.Metadata.Name] = volume{Name: c.Metadata.Name}
		persistent[c.Metadata.Name] = true
	}
	for _, c := range []*container{stalwart, tailer} {
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("%s mounts volume %q, which the pod does not define", c.Name, m.Name)
			}
		}
	}

	// Referenced Secret and ConfigMap keys exist.
	keyOf := func(kind string, ref keyRef) (string, bool) {
		d := find(docs, kind, ref.Name)
		if d == nil {
			t.Errorf("%s %q is referenced but not defined", kind, ref.Name)
			return "", false
		}
		if v, ok := d.Data[ref.Key]; ok {
			return v, true
		}
		v, ok := d.StringData[ref.Key]
		if !ok {
			t.Errorf("%s %q has no key %q", kind, ref.Name, ref.Key)
		}
		return v, ok
	}
	for _, v := range volumes {
		if v.ConfigMap != nil {
			for _, it := range v.ConfigMap.Items {
				keyOf("ConfigMap", keyRef{v.ConfigMap.Name, it.Key})
			}
		}
		if v.Secret != nil && find(docs, "Secret", v.Secret.SecretName) == nil {
			t.Errorf("Secret %q is referenced but not defined", v.Secret.SecretName)
		}
	}

	// Materialize the config volumes mounted in a container under a temp
	// root, rewriting their in-container paths in what they hold, so the
	// real code can read them.
	tmp := t.TempDir()
	materialize := func(c *container) (rewrite func(string) string) {
		var cfgMounts []string
		for _, m := range c.VolumeMounts {
			if v := volumes[m.Name]; v.ConfigMap != nil {
				cfgMounts = append(cfgMounts, path.Clean(m.MountPath))
			}
		}
		rewrite = func(s string) string {
			for _, mp := range cfgMounts {
				s = strings.ReplaceAll(s, mp+"/", filepath.Join(tmp, c.Name, mp)+"/")
			}
			return s
		}
		for _, m := range c.VolumeMounts {
			v := volumes[m.Name]
			if v.ConfigMap == nil {
				continue
			}
			cm := find(docs, "ConfigMap", v.ConfigMap.Name)
			if cm == nil {
				continue
			}
			items := map[string]string{}
			for k := range cm.Data {
				items[k] = k
			}
			if len(v.ConfigMap.Items) > 0 {
				items = map[string]string{}
				for _, it := range v.ConfigMap.Items {
					items[it.Key] = it.Path
				}
			}
			for key, p := range items {
				dst := filepath.Join(tmp, c.Name, m.MountPath, p)
				os.MkdirAll(filepath.Dir(dst), 0o755)
				if err := os.WriteFile(dst, []byte(rewrite(cm.Data[key])), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		return rewrite
	}

	// Stalwart's store, as its own config.json says.
	stalwartConf := "/etc/stalwart/config.json" // the image's CMD
	for i, a := range stalwart.Args {
		if (a == "--config" || a == "-c") && i+1 < len(stalwart.Args) {
			stalwartConf = stalwart.Args[i+1]
		}
	}
	store, err := config.StalwartDataPath(materialize(stalwart)(stalwartConf))
	if err != nil {
		t.Fatalf("Stalwart's config (%s, from a ConfigMap): %v", stalwartConf, err)
	}
	storeMount, storeRel, ok := mountOf(*stalwart, store)
	if !ok || !persistent[storeMount.Name] {
		t.Fatalf("Stalwart's store %s is not on a persistent volume (mount %+v)", store, storeMount)
	}

	// tailer's effective settings: its args, environment and config file,
	// resolved by the real run command.
	rewrite := materialize(tailer)
	env := map[string]string{}
	for _, e := range tailer.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = rewrite(e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			if _, ok := keyOf("Secret", *e.ValueFrom.SecretKeyRef); ok {
				env[e.Name] = "from-secret"
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			v, _ := keyOf("ConfigMap", *e.ValueFrom.ConfigMapKeyRef)
			env[e.Name] = rewrite(v)
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "stalwart-0"
		}
	}
	for _, ef := range tailer.EnvFrom {
		if ef.SecretRef != nil && find(docs, "Secret", ef.SecretRef.Name) == nil {
			t.Errorf("envFrom Secret %q is not defined", ef.SecretRef.Name)
		}
		if ef.ConfigMapRef != nil {
			if cm := find(docs, "ConfigMap", ef.ConfigMapRef.Name); cm != nil {
				for k, v := range cm.Data {
					env[k] = rewrite(v)
				}
			}
		}
	}
	args := append(slices.Clone(tailer.Command), tailer.Args...)
	if len(args) > 0 && strings.HasSuffix(args[0], "/tailer") {
		args = args[1:]
	}
	if len(args) == 0 || args[0] != "run" {
		t.Fatalf("tailer's args %v: want 'run ...'", args)
	}
	for i := range args {
		args[i] = rewrite(args[i])
	}
	cmd, settings, err := resolve(t, args, env)
	if err != nil {
		t.Fatalf("tailer run %v: %v", args, err)
	}
	get := func(name string) string { return cmd.Flags().Lookup(name).Value.String() }

	db := get("db")
	dbMount, dbRel, ok := mountOf(*tailer, db)
	if !ok || dbMount.Name != storeMount.Name || dbRel != storeRel {
		t.Errorf("tailer's --db %s (%v) is not Stalwart's store %s (volume %s, %s): %s",
			db, settings["db"], store, storeMount.Name, storeRel, dbMount.Name+":"+dbRel)
	}
	scratch := get("scratch")
	if scratch == "" {
		scratch = db + ".tailer"
	}
	scMount, scRel, ok := mountOf(*tailer, scratch)
	switch {
	case !ok || scMount.Name != storeMount.Name:
		t.Errorf("--scratch %s is not on the store's volume %s: exports hard-link the store's files", scratch, storeMount.Name)
	case scMount.MountPath != dbMount.MountPath:
		t.Errorf("--scratch %s and --db %s are on different mounts in the tailer container: link(2) fails across mounts", scratch, db)
	case inside(scRel, storeRel) || inside(storeRel, scRel):
		t.Errorf("--scratch %s overlaps the store %s: it must be beside it", scratch, db)
	}
	spool := get("spool")
	if spool == "" {
		spool = path.Join(scratch, "spool")
	}
	if m, _, ok := mountOf(*tailer, spool); !ok || !persistent[m.Name] {
		t.Errorf("the spool %s is not on a persistent volume: a restart would lose what it holds", spool)
	}

	// --listen: reachable by the kubelet, and the probes go to its port.
	host, portStr, err := splitHostPort(get("listen"))
	if err != nil {
		t.Fatalf("--listen %q: %v", get("listen"), err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("--listen %s: the kubelet probes the pod IP; listen on 0.0.0.0", get("listen"))
	}
	port, _ := strconv.Atoi(portStr)
	if !slices.ContainsFunc(tailer.Ports, func(p struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	}) bool {
		return p.ContainerPort == port
	}) {
		t.Errorf("no containerPort %d (--listen) on the tailer container", port)
	}
	for _, pr := range []struct {
		name string
		p    *probe
		path string
	}{{"livenessProbe", tailer.Liveness, "/healthz"}, {"readinessProbe", tailer.Readiness, "/readyz"}} {
		switch {
		case pr.p == nil || pr.p.HTTPGet == nil:
			t.Errorf("tailer has no %s httpGet", pr.name)
		case pr.p.HTTPGet.Path != pr.path:
			t.Errorf("tailer %s path %s, want %s", pr.name, pr.p.HTTPGet.Path, pr.path)
		case portOf(*tailer, pr.p.HTTPGet.Port) != port:
			t.Errorf("tailer %s port %s is not --listen's %d", pr.name, pr.p.HTTPGet.Port.Value, port)
		}
	}

	// Same user as Stalwart (hard links of its files), limits, shutdown.
	su, tu := userOf(pod, *stalwart), userOf(pod, *tailer)
	if su == nil || tu == nil || *su != *tu {
		t.Errorf("tailer must run as Stalwart's user (fs.protected_hardlinks): runAsUser %v and %v", su, tu)
	}
	for _, c := range []*container{stalwart, tailer} {
		for _, r := range []string{"cpu", "memory"} {
			if c.Resources.Limits[r] == "" || c.Resources.Requests[r] == "" {
				t.Errorf("%s: no %s request and limit", c.Name, r)
			}
		}
	}
	shutdown, _ := time.ParseDuration(get("shutdown-timeout"))
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < shutdown+10*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v: want at least --shutdown-timeout (%v) + 10s", g, shutdown)
	}

	// The Service the StatefulSet names selects this pod, and its ports exist.
	if ws.ServiceName != "" {
		d := find(docs, "Service", ws.ServiceName)
		if d == nil {
			t.Fatalf("serviceName %q: no such Service", ws.ServiceName)
		}
		var ss serviceSpec
		if err := d.Spec.Decode(&ss); err != nil {
			t.Fatal(err)
		}
		for k, v := range ss.Selector {
			if ws.Template.Metadata.Labels[k] != v {
				t.Errorf("Service %s selector %s=%s does not select the pod", d.Metadata.Name, k, v)
			}
		}
		for _, p := range ss.Ports {
			if portOf(*stalwart, p.TargetPort) < 0 && portOf(*tailer, p.TargetPort) < 0 {
				t.Errorf("Service port %s: target %s is no container's port", p.Name, p.TargetPort.Value)
			}
		}
	}
}

func splitHostPort(addr string) (host, port string, err error) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return "", "", errors.New("no port")
	}
	return strings.Trim(addr[:i], "[]"), addr[i+1:], nil
}

// unit is a parsed systemd unit: section -> key -> values.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, file string) unit {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	sec := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			sec = line[1 : len(line)-1]
			u[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || sec == "" || strings.HasSuffix(line, "\\") {
				t.Fatalf("%s:%d: not KEY=VALUE in a section: %q", file, n, line)
			}
			u[sec][strings.TrimSpace(k)] = append(u[sec][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

func (u unit) get(sec, key string) string {
	v := u[sec][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// TestSystemdUnit checks deploy/systemd/tailer.service: ordered after
// Stalwart, credentials from an EnvironmentFile, always restarted, and an
// ExecStart whose flags 'tailer run --help' lists, resolving (with the
// example config installed as its --config) to a scratch directory that
// is the unit's StateDirectory, beside Stalwart's store.
func TestSystemdUnit(t *testing.T) {
	file := filepath.Join(deployDir, "systemd", "tailer.service")
	u := parseUnit(t, file)
	if !slices.Contains(strings.Fields(strings.Join(u["Unit"]["After"], " ")), "stalwart.service") {
		t.Errorf("After= does not name stalwart.service")
	}
	if u.get("Service", "Restart") != "always" {
		t.Errorf("Restart=%s, want always", u.get("Service", "Restart"))
	}
	envFile := strings.TrimPrefix(u.get("Service", "EnvironmentFile"), "-")
	if !path.IsAbs(envFile) {
		t.Errorf("EnvironmentFile=%q: want an absolute path (credentials)", envFile)
	}
	if u.get("Service", "User") != "stalwart" {
		t.Errorf("User=%s: tailer must run as Stalwart's user to hard-link its files", u.get("Service", "User"))
	}
	if ps := u.get("Service", "ProtectSystem"); ps == "strict" {
		t.Errorf("ProtectSystem=strict: its ReadWritePaths= mounts make link(2) between store and scratch fail")
	}
	if u.get("Install", "WantedBy") == "" {
		t.Errorf("no WantedBy=: systemctl enable does nothing")
	}
	example, err := os.ReadFile(filepath.Join(deployDir, "systemd", "tailer.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="} {
		if !bytes.Contains(example, []byte(k)) {
			t.Errorf("tailer.env.example lacks %s", k)
		}
	}

	exec := strings.Fields(u.get("Service", "ExecStart"))
	if len(exec) < 2 || !path.IsAbs(exec[0]) || path.Base(exec[0]) != "tailer" || exec[1] != "run" {
		t.Fatalf("ExecStart=%v: want /ABS/PATH/tailer run ...", exec)
	}
	var help bytes.Buffer
	root := newRootCmd()
	root.SetOut(&help)
	root.SetArgs([]string{"run", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, a := range exec[2:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !regexp.MustCompile(`(?m)^\s+(-\w, )?--` + regexp.QuoteMeta(name) + `\b`).Match(help.Bytes()) {
				t.Errorf("ExecStart flag --%s is not in 'tailer run --help'", name)
			}
		}
	}

	// Resolve as the unit would run: the example config in place of
	// /etc/tailer/tailer.yaml, Stalwart's config.json as install.sh writes it.
	tmp := t.TempDir()
	stalwartJSON := writeFile(t, tmp, "config.json", `{"@type":"RocksDb","path":"/var/lib/stalwart/"}`)
	args := slices.Clone(exec[1:])
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--config":
			args[i+1] = filepath.Join(deployDir, "tailer.example.yaml")
		case "--stalwart-config":
			args[i+1] = stalwartJSON
		}
	}
	cmd, _, err := resolve(t, args, nil)
	if err != nil {
		t.Fatalf("ExecStart with the example config: %v", err)
	}
	get := func(name string) string { return cmd.Flags().Lookup(name).Value.String() }
	db, scratch := get("db"), get("scratch")
	if db != "/var/lib/stalwart" {
		t.Errorf("--db %s, want Stalwart's /var/lib/stalwart", db)
	}
	if state := u.get("Service", "StateDirectory"); scratch != path.Join("/var/lib", state) {
		t.Errorf("--scratch %s is not the unit's StateDirectory=%s (created for User=)", scratch, state)
	}
	if inside(scratch, db) || inside(db, scratch) || path.Dir(scratch) != path.Dir(db) {
		t.Errorf("--scratch %s must be beside the store %s, on its filesystem", scratch, db)
	}
	shutdown, _ := time.ParseDuration(get("shutdown-timeout"))
	if stop, err := time.ParseDuration(u.get("Service", "TimeoutStopSec") + "s"); err != nil || stop <= shutdown {
		t.Errorf("TimeoutStopSec=%s must exceed --shutdown-timeout %v", u.get("Service", "TimeoutStopSec"), shutdown)
	}
}

// TestDockerfile checks the multi-stage build: a Go (>= go.mod's) trixie
// build stage with librocksdb-dev, a debian:trixie-slim runtime with the
// matching librocksdb9.10 runtime package, the binary copied from the
// build stage, run as Stalwart's uid, and a CMD the command tree accepts.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	type instr struct{ op, arg string }
	type stage struct {
		image, name string
		instrs      []instr
	}
	var stages []*stage
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		op, arg, _ := strings.Cut(line, " ")
		op, arg = strings.ToUpper(op), strings.TrimSpace(arg)
		if op == "FROM" {
			f := strings.Fields(arg)
			s := &stage{image: f[len(f)-1]}
			if len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS") {
				s.image, s.name = f[len(f)-3], f[len(f)-1]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s before FROM", op)
		}
		s := stages[len(stages)-1]
		s.instrs = append(s.instrs, instr{op, arg})
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages: want a build stage and a runtime stage", len(stages))
	}
	build, runtime := stages[0], stages[len(stages)-1]
	runs := func(s *stage) string {
		var b strings.Builder
		for _, i := range s.instrs {
			if i.op == "RUN" {
				b.WriteString(i.arg + "\n")
			}
		}
		return b.String()
	}

	m := regexp.MustCompile(`(^|/)golang:(\d+)\.(\d+)[^-]*-trixie$`).FindStringSubmatch(build.image)
	if m == nil {
		t.Fatalf("build stage FROM %s: want golang:X.Y-trixie (trixie has librocksdb-dev 9.10)", build.image)
	}
	gomod, _ := os.ReadFile("../../go.mod")
	want := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(gomod))
	if a, b := atoi(m[2])*1000+atoi(m[3]), atoi(want[1])*1000+atoi(want[2]); a < b {
		t.Errorf("build image Go %s.%s is older than go.mod's go %s.%s", m[2], m[3], want[1], want[2])
	}
	if !regexp.MustCompile(`apt-get install[^\n]*\blibrocksdb-dev\b`).MatchString(runs(build)) {
		t.Errorf("the build stage does not install librocksdb-dev")
	}
	if !regexp.MustCompile(`go build[^\n]*\./cmd/tailer`).MatchString(runs(build)) {
		t.Errorf("the build stage does not build ./cmd/tailer")
	}
	if !regexp.MustCompile(`(^|/)debian:trixie-slim$`).MatchString(runtime.image) {
		t.Errorf("runtime FROM %s: want debian:trixie-slim", runtime.image)
	}
	if !regexp.MustCompile(`apt-get install[^\n]*\blibrocksdb9\.10\b`).MatchString(runs(runtime)) {
		t.Errorf("the runtime stage does not install librocksdb9.10 (the runtime package of librocksdb-dev 9.10)")
	}
	if !strings.Contains(runs(runtime), "ca-certificates") {
		t.Errorf("the runtime stage lacks ca-certificates (https S3 endpoints)")
	}
	var copied, user, entry, cmdLine string
	for _, i := range runtime.instrs {
		switch i.op {
		case "COPY":
			if strings.Contains(i.arg, "--from="+build.name+" ") {
				copied = strings.Fields(i.arg)[len(strings.Fields(i.arg))-1]
			}
		case "USER":
			user = i.arg
		case "ENTRYPOINT":
			entry = i.arg
		case "CMD":
			cmdLine = i.arg
		}
	}
	if build.name == "" || copied == "" {
		t.Fatalf("the runtime stage does not COPY --from the named build stage")
	}
	if !strings.Contains(entry, `"`+copied+`"`) {
		t.Errorf("ENTRYPOINT %s does not run the copied binary %s", entry, copied)
	}
	if uid, _, _ := strings.Cut(user, ":"); uid != "2000" {
		t.Errorf("USER %q: want Stalwart's uid 2000 (hard links of its files need the same user)", user)
	}
	var cmdArgs []string
	if err := yaml.Unmarshal([]byte(cmdLine), &cmdArgs); err != nil || len(cmdArgs) == 0 {
		t.Fatalf("CMD %s: want a JSON list", cmdLine)
	}
	c, rest, err := newRootCmd().Find(cmdArgs)
	if err != nil || c.ParseFlags(rest) != nil || !c.Runnable() {
		t.Errorf("CMD %v is not a tailer command line: %v", cmdArgs, err)
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil || !regexp.MustCompile(`(?m)^/?\.git/?$`).Match(ignore) {
		t.Errorf(".dockerignore missing or not excluding .git: %v", err)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
