package stack

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
)

// Kubectl runs the real kubectl as the host administrator and returns its standard output.
func (s *Stack) Kubectl(ctx context.Context, stdin []byte, args ...string) (string, error) {
	return s.KubectlAs(ctx, s.Kubeconfig, stdin, args...)
}

// KubectlAs runs the real kubectl with the given kubeconfig.
func (s *Stack) KubectlAs(ctx context.Context, kubeconfig string, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.cfg.BinDir, "kubectl"), append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %v: %w: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}
