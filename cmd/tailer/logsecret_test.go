package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// TestSecretsNeverLogged runs the real binary at debug level, with S3
// credentials from the config file, from ${VAR} in it and from TAILER_*,
// against a fake S3 that refuses them, and checks neither secret appears
// anywhere in what tailer prints, while the fake saw them used.
func TestSecretsNeverLogged(t *testing.T) {
	const (
		keyID  = "AKIDLOGTEST0001"
		secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYLOGTEST" // the shape of a real one
		basic  = "endpointpassword42"
	)
	var (
		mu    sync.Mutex
		auths []string
	)
	s3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>1</RequestId></Error>`))
	}))
	defer s3.Close()
	dir := t.TempDir()
	literal := writeFile(t, dir, "literal.yaml", "s3-access-key-id: "+keyID+"\ns3-secret-access-key: "+secret+"\nreplica: s3://backups/mail\n")
	os.Chmod(literal, 0o644) // readable by others: tailer warns, without the secret
	fromVar := writeFile(t, dir, "var.yaml", "s3-access-key-id: ${KEY_ID}\ns3-secret-access-key: ${SECRET}\nreplica: s3://backups/mail\n")
	withBasic := strings.Replace(s3.URL, "http://", "http://user:"+basic+"@", 1)

	for _, c := range []struct {
		name string
		args []string
		env  []string
		want string // on stderr
	}{
		{"literal in the file", []string{"list", "--config", literal, "--s3-endpoint", s3.URL}, nil, "readable by other users"},
		{"${VAR} in the file", []string{"verify", "--config", fromVar, "--s3-endpoint", s3.URL}, []string{"KEY_ID=" + keyID, "SECRET=" + secret}, "refused the credentials"},
		{"TAILER_* variables", []string{"changes", "--replica", "s3://backups/mail", "--s3-endpoint", withBasic},
			[]string{"TAILER_S3_ACCESS_KEY_ID=" + keyID, "TAILER_S3_SECRET_ACCESS_KEY=" + secret}, "refused the credentials"},
		{"restore", []string{"restore", "--config", fromVar, "--to", filepath.Join(dir, "r"), "--s3-endpoint", s3.URL},
			[]string{"KEY_ID=" + keyID, "SECRET=" + secret}, "refused the credentials"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			auths = nil
			mu.Unlock()
			env := append([]string{"AWS_EC2_METADATA_DISABLED=true", "TAILER_LOG_LEVEL=debug"}, c.env...)
			code, stdout, stderr := runTailer(t, cliCase{args: c.args, env: env})
			if code == 0 {
				t.Fatalf("exit 0 against a bucket that refuses everything:\n%s", stderr)
			}
			out := stdout + stderr
			for _, s := range []string{secret, basic} {
				if strings.Contains(out, s) {
					t.Errorf("a secret was printed:\n%s", out)
				}
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr lacks %q:\n%s", c.want, stderr)
			}
			if !strings.Contains(stderr, `"level":"DEBUG"`) {
				t.Errorf("no debug records: the check proves little:\n%s", stderr)
			}
			mu.Lock()
			used := len(auths) > 0 && strings.Contains(auths[0], "Credential="+keyID+"/")
			mu.Unlock()
			if !used {
				t.Errorf("the fake S3 did not see the configured key id: %q", auths)
			}
		})
	}
}

// TestNoLoggingOfCredentials reads every non-test Go file of the module
// and fails on a log call that passes a credential (a value named like
// one) or a whole configuration struct (opts, cfg, ...: they may hold
// credentials): the logs are what gets pasted into tickets. Fields of
// those structs (opts.WorkDir) are fine, and so is a replica's String(),
// which never holds credentials (uploader/open.go displayURL).
func TestNoLoggingOfCredentials(t *testing.T) {
	logCall := regexp.MustCompile(`^(Debug|Info|Warn|Error|Log|LogAttrs|With|Printf|Println|Print)$`)
	bad := regexp.MustCompile(`(?i)^(opts|options|cfg|config|conf|creds|s3keys|env|environ)$|secret|password|passwd|accesskey|credential`)
	fset := token.NewFileSet()
	n := 0
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return nil // a file mid-edit by someone else; the build catches it
		}
		n++
		ast.Inspect(f, func(node ast.Node) bool {
			call, ok := node.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !logCall.MatchString(sel.Sel.Name) {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && (x.Name == "fmt" || x.Name == "errors") {
				return true // printing to a writer or building an error, not logging
			}
			for _, a := range call.Args {
				for _, name := range valueNames(a) {
					if bad.MatchString(name) {
						t.Errorf("%s: a log call passes %s: log names and redacted forms (Replica.String()), never credentials or configuration structs",
							fset.Position(a.Pos()), name)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("only %d Go files read: wrong root?", n)
	}
}

// valueNames lists the names of the values an expression hands over:
// x.y gives y (a field of x, not x whole), f(a, b) gives a's and b's (the
// result of a method such as r.String() is its own business), T{...}
// gives T and its elements.
func valueNames(e ast.Expr) []string {
	switch e := e.(type) {
	case *ast.Ident:
		return []string{e.Name}
	case *ast.SelectorExpr:
		return []string{e.Sel.Name}
	case *ast.CallExpr:
		var out []string
		for _, a := range e.Args {
			out = append(out, valueNames(a)...)
		}
		return out
	case *ast.CompositeLit:
		var out []string
		if e.Type != nil {
			out = valueNames(e.Type)
		}
		for _, el := range e.Elts {
			out = append(out, valueNames(el)...)
		}
		return out
	case *ast.KeyValueExpr:
		return valueNames(e.Value)
	case *ast.UnaryExpr:
		return valueNames(e.X)
	case *ast.StarExpr:
		return valueNames(e.X)
	case *ast.ParenExpr:
		return valueNames(e.X)
	case *ast.BinaryExpr:
		return append(valueNames(e.X), valueNames(e.Y)...)
	case *ast.IndexExpr:
		return valueNames(e.X)
	}
	return nil
}
