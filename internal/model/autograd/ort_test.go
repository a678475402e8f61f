package autograd

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// ortErr is set when the runtime could not be started; tests that need it skip with it.
var ortErr error

func TestMain(m *testing.M) {
	lib, err := testutil.FindORTLib()
	if err == nil {
		ort.SetSharedLibraryPath(lib)
		err = ort.InitializeEnvironment(ort.WithLogLevelError())
	}
	ortErr = err
	code := m.Run()
	if err == nil {
		if derr := ort.DestroyEnvironment(); derr != nil && code == 0 {
			fmt.Fprintln(os.Stderr, "destroy environment:", derr)
			code = 1
		}
	}
	os.Exit(code)
}

func needORT(t testing.TB) {
	t.Helper()
	if ortErr != nil {
		testutil.Missing(t, "onnx runtime unavailable: %v", ortErr)
	}
}

// array is a host tensor kept as float64 whatever its ONNX element type.
type array struct {
	dims []int64
	data []float64
}

func (a array) clone() array {
	return array{dims: append([]int64(nil), a.dims...), data: append([]float64(nil), a.data...)}
}

// session wraps a DynamicAdvancedSession over named inputs and outputs of one element type.
type session struct {
	s         *ort.DynamicAdvancedSession
	ins, outs []string
	elem      pb.TensorProto_DataType
}

func newSession(m *pb.ModelProto, ins, outs []string, elem pb.TensorProto_DataType, threads int) (*session, error) {
	raw, err := onnxgraph.Marshal(m)
	if err != nil {
		return nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if threads > 0 {
		if err := opts.SetIntraOpNumThreads(threads); err != nil {
			return nil, err
		}
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(raw, ins, outs, opts)
	if err != nil {
		return nil, err
	}
	return &session{s: s, ins: ins, outs: outs, elem: elem}, nil
}

func (s *session) Destroy() error { return s.s.Destroy() }

func (s *session) run(inputs []array) (out []array, err error) {
	vals := make([]ort.Value, len(inputs))
	defer func() {
		for _, v := range vals {
			if v != nil {
				err = errors.Join(err, v.Destroy())
			}
		}
	}()
	for i, a := range inputs {
		switch s.elem {
		case pb.TensorProto_DOUBLE:
			vals[i], err = ort.NewTensor(ort.NewShape(a.dims...), append([]float64(nil), a.data...))
		default:
			f := make([]float32, len(a.data))
			for j, v := range a.data {
				f[j] = float32(v)
			}
			vals[i], err = ort.NewTensor(ort.NewShape(a.dims...), f)
		}
		if err != nil {
			return nil, err
		}
	}
	outs := make([]ort.Value, len(s.outs))
	defer func() {
		for _, v := range outs {
			// A failed conversion in Run leaves a typed nil behind.
			if v != nil && !reflect.ValueOf(v).IsNil() {
				err = errors.Join(err, v.Destroy())
			}
		}
	}()
	if err := s.s.Run(vals, outs); err != nil {
		return nil, err
	}
	out = make([]array, len(outs))
	for i, v := range outs {
		switch t := v.(type) {
		case *ort.Tensor[float32]:
			d := t.GetData()
			out[i] = array{dims: t.GetShape(), data: make([]float64, len(d))}
			for j, x := range d {
				out[i].data[j] = float64(x)
			}
		case *ort.Tensor[float64]:
			out[i] = array{dims: t.GetShape(), data: append([]float64(nil), t.GetData()...)}
		default:
			return nil, fmt.Errorf("output %q: unexpected value type %T", s.outs[i], v)
		}
	}
	return out, nil
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
