package model

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// TestCUDAUnavailable needs a machine without the CUDA provider (the CI and dev machines): cuda must fail
// naming what is missing, auto must fall back to the CPU with a notice.
func TestCUDAUnavailable(t *testing.T) {
	testRuntime(t)
	lib := runtimeLibrary()
	if _, err := os.Stat(filepath.Join(filepath.Dir(lib), "libonnxruntime_providers_cuda.so")); err == nil {
		t.Skip("CUDA provider present beside the library: not the machine for this test")
	}
	_, err := NewSessionCache(SessionOptions{Device: DeviceCUDA})
	if err == nil {
		t.Fatal("cuda runtime created without the CUDA provider")
	}
	checkOneLine(t, err)
	if !errors.Is(err, ErrCUDAUnavailable) {
		t.Errorf("error %v does not wrap ErrCUDAUnavailable", err)
	}
	for _, want := range []string{"libonnxruntime_providers_cuda.so", "CUDA 13", "cuDNN 9", "--device cpu"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	r, err := NewSessionCache(SessionOptions{Device: DeviceAuto})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Device() != DeviceCPU || !strings.Contains(r.Notice(), "cpu") || strings.Contains(r.Notice(), "\n") {
		t.Errorf("auto: device %s notice %q", r.Device(), r.Notice())
	}
	if _, err := Demo().Forward(r, make([]float32, Planes*64), 1); err != nil {
		t.Errorf("auto fallback cannot run: %v", err)
	}
}

func TestRuntimeOptionErrors(t *testing.T) {
	testRuntime(t)
	for _, o := range []SessionOptions{{Device: "tpu"}, {Threads: -1}} {
		if _, err := NewSessionCache(o); err == nil {
			t.Errorf("%+v: no error", o)
		} else {
			checkOneLine(t, err)
		}
	}
}

// TestInitRuntimeErrors lists every path tried; after a success InitRuntime returns the loaded library.
func TestInitRuntimeErrors(t *testing.T) {
	lib := testutil.ORTLib(t)
	testRuntime(t)
	got, err := InitRuntime([]string{"/nonexistent/libonnxruntime.so"})
	if err != nil || got != lib {
		t.Errorf("after success: %q, %v; want %q", got, err, lib)
	}
}

func TestInitRuntimeMessage(t *testing.T) {
	// The message is built before any library is touched, so this runs whatever the process state.
	saved := runtimeState.path
	runtimeState.path = ""
	defer func() { runtimeState.path = saved }()
	dir := t.TempDir()
	junk := filepath.Join(dir, "libjunk.so")
	if err := os.WriteFile(junk, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.so")
	_, err := InitRuntime([]string{missing, junk})
	if err == nil {
		t.Fatal("no error")
	}
	checkOneLine(t, err)
	for _, want := range []string{missing + " (not found)", junk + " (", `run "make ort"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := InitRuntime(nil); err == nil || !strings.Contains(err.Error(), "make ort") {
		t.Errorf("no paths: %v", err)
	}
}

// TestRunScalarOutput: the binding cannot hand back a rank-0 output; running a plan that asks for one must
// fail with an error naming the run, not panic while cleaning up.
func TestRunScalarOutput(t *testing.T) {
	rt := testRuntime(t)
	g := &pb.GraphProto{
		Name:   proto.String("scalar"),
		Input:  []*pb.ValueInfoProto{onnxgraph.ValueInfo("X", pb.TensorProto_FLOAT, -1, 2)},
		Node:   []*pb.NodeProto{onnxgraph.Node("ReduceSum", "sum", []string{"X"}, []string{"S"}, onnxgraph.AttrInt("keepdims", 0))},
		Output: []*pb.ValueInfoProto{onnxgraph.UntypedOutput("S", pb.TensorProto_FLOAT)},
	}
	p, err := NewPlan(onnxgraph.NewModel(g, 17))
	if err != nil {
		t.Fatal(err)
	}
	_, err = rt.outputMetas(p, map[string]Tensor{"X": {Shape: []int64{1, 2}, Data: []float32{1, 2}}})
	if err == nil || !strings.HasPrefix(err.Error(), "model: run: ") {
		t.Fatalf("got error %v, want a model: run: error", err)
	}
	checkOneLine(t, err)
}
