package install

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting/roundtrip"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/fuzzer"
)

// TestRoundTripTypes converts random objects of every kind to each served version and
// back, through JSON and YAML, and fails on any field that does not survive.
func TestRoundTripTypes(t *testing.T) {
	roundtrip.RoundTripTestForAPIGroup(t, Install, fuzzer.Funcs)
}
