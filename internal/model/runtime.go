package model

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// runtimeState is process-wide because ONNX Runtime keeps one environment per process.
var runtimeState struct {
	mu   sync.Mutex
	path string // library loaded; "" when not initialised
}

// InitRuntime loads the ONNX Runtime shared library from the first of paths that works and creates the
// process-wide environment. After a success it returns the loaded path at once, whatever paths says.
func InitRuntime(paths []string) (string, error) {
	runtimeState.mu.Lock()
	defer runtimeState.mu.Unlock()
	if runtimeState.path != "" {
		return runtimeState.path, nil
	}
	if len(paths) == 0 {
		return "", errors.New(`model: onnx runtime library: no path to try; run "make ort" or set --ort-lib`)
	}
	var tried []string
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			reason := "not found"
			if !errors.Is(err, os.ErrNotExist) {
				reason = oneLine(err.Error())
			}
			tried = append(tried, fmt.Sprintf("%s (%s)", p, reason))
			continue
		}
		ort.SetSharedLibraryPath(p)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			tried = append(tried, fmt.Sprintf("%s (%s)", p, oneLine(err.Error())))
			continue
		}
		runtimeState.path = p
		return p, nil
	}
	return "", fmt.Errorf(`model: onnx runtime library not loaded; tried %s; run "make ort" to fetch it or set --ort-lib`,
		strings.Join(tried, "; "))
}

// ShutdownRuntime destroys the environment; sessions must be closed first. Safe to call when not initialised.
func ShutdownRuntime() error {
	runtimeState.mu.Lock()
	defer runtimeState.mu.Unlock()
	if runtimeState.path == "" {
		return nil
	}
	runtimeState.path = ""
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("model: shut down onnx runtime: %w", err)
	}
	return nil
}

// runtimeLibrary returns the loaded library path, "" before InitRuntime succeeded.
func runtimeLibrary() string {
	runtimeState.mu.Lock()
	defer runtimeState.mu.Unlock()
	return runtimeState.path
}

// Device selects the execution provider.
type Device string

// Devices understood by NewSessionCache.
const (
	DeviceCPU  Device = "cpu"
	DeviceCUDA Device = "cuda"
	DeviceAuto Device = "auto" // CUDA when its provider loads, else CPU with a Notice
)

// SessionOptions configure every session a SessionCache creates.
type SessionOptions struct {
	Device  Device
	Threads int // intra-op threads; 0 uses one per CPU the process may run on (DefaultThreads)
}

// cpusAvailable counts the CPUs the process may run on; a variable so that tests can stand in for the
// machine.
var cpusAvailable = affinityCPUs

// DefaultThreads is the intra-op thread count used for Threads 0: one per CPU in the process's affinity
// mask (what Slurm, taskset or a cpuset grants it). ONNX Runtime's own default counts physical cores as it
// sees them: it took one thread on a 2-CPU virtual machine, where two ran maia-1100 1.75 times as fast.
func DefaultThreads() int {
	return max(cpusAvailable(), 1)
}

// ErrCUDAUnavailable reports that the CUDA execution provider could not be loaded.
var ErrCUDAUnavailable = errors.New("cuda execution provider unavailable")

// SessionCache creates and caches ONNX Runtime sessions, one per (plan, requested outputs), all with the same
// SessionOptions; Run finds or creates the session for a plan and runs it. The process-wide ONNX Runtime
// environment itself is InitRuntime's, not the cache's.
type SessionCache struct {
	opts   SessionOptions
	cuda   bool   // CUDA provider appended to every session
	notice string // set once when auto fell back to CPU

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
}

type session struct {
	s       *ort.DynamicAdvancedSession
	inputs  []string
	outputs []string
}

// NewSessionCache checks the options against the loaded library; InitRuntime must have succeeded. For DeviceCUDA
// a missing CUDA provider is an error; DeviceAuto then falls back to the CPU and says so in Notice.
func NewSessionCache(opts SessionOptions) (*SessionCache, error) {
	if runtimeLibrary() == "" {
		return nil, errors.New(`model: new runtime: onnx runtime not initialised; call InitRuntime first (run "make ort" if the library is missing)`)
	}
	if opts.Threads < 0 {
		return nil, fmt.Errorf("model: new runtime: threads %d: want 0 (default) or more", opts.Threads)
	}
	if opts.Device == "" {
		opts.Device = DeviceCPU
	}
	if opts.Threads == 0 {
		opts.Threads = DefaultThreads()
	}
	r := &SessionCache{opts: opts, sessions: map[string]*session{}}
	switch opts.Device {
	case DeviceCPU:
	case DeviceCUDA, DeviceAuto:
		err := probeCUDA()
		switch {
		case err == nil:
			r.cuda = true
		case opts.Device == DeviceCUDA:
			return nil, fmt.Errorf("model: device cuda: %w; use --device cpu or auto", err)
		default:
			r.notice = fmt.Sprintf("device auto: using cpu, %v", err)
		}
	default:
		return nil, fmt.Errorf("model: new runtime: device %q: want cpu, cuda or auto", opts.Device)
	}
	return r, nil
}

// probeCUDA appends the CUDA provider to throw-away options, which makes ONNX Runtime load its provider
// library and CUDA; the error names what is missing in one line.
func probeCUDA() (err error) {
	// ONNX Runtime also logs the failure to stderr; the returned error says it once, in one line.
	if ort.SetEnvironmentLogLevel(ort.LoggingLevelFatal) == nil {
		defer ort.SetEnvironmentLogLevel(ort.LoggingLevelError)
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return fmt.Errorf("%w: %s", ErrCUDAUnavailable, oneLine(err.Error()))
	}
	defer func() { err = errors.Join(err, destroyErr(so.Destroy())) }()
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return cudaError(err)
	}
	defer func() { err = errors.Join(err, destroyErr(co.Destroy())) }()
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return cudaError(err)
	}
	return nil
}

func cudaError(err error) error {
	lib := runtimeLibrary()
	dir := filepath.Dir(lib)
	var missing []string
	for _, name := range []string{"libonnxruntime_providers_cuda.so", "libonnxruntime_providers_shared.so"} {
		if _, statErr := os.Stat(filepath.Join(dir, name)); statErr != nil {
			missing = append(missing, name)
		}
	}
	what := "CUDA 13 and cuDNN 9 libraries"
	if len(missing) > 0 {
		what = fmt.Sprintf("%s beside %s (from an ONNX Runtime GPU build), with CUDA 13 and cuDNN 9", strings.Join(missing, " and "), lib)
	}
	return fmt.Errorf("%w: missing %s; onnx runtime said: %s", ErrCUDAUnavailable, what, oneLine(err.Error()))
}

// destroyErr keeps Destroy's error only when there is one, so errors.Join stays nil on success.
func destroyErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("model: destroy: %w", err)
}

// Notice is a one-line message for the user when the runtime did not get what was asked (auto fell back to
// the CPU); "" otherwise.
func (r *SessionCache) Notice() string { return r.notice }

// Threads reports the intra-op thread count sessions use, the default resolved.
func (r *SessionCache) Threads() int { return r.opts.Threads }

// Device reports the provider sessions actually use.
func (r *SessionCache) Device() Device {
	if r.cuda {
		return DeviceCUDA
	}
	return DeviceCPU
}

// Close destroys every cached session. The cache is unusable afterwards.
func (r *SessionCache) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for k, s := range r.sessions {
		errs = append(errs, destroyErr(s.s.Destroy()))
		delete(r.sessions, k)
	}
	r.closed = true
	return errors.Join(errs...)
}

// Tensor is a float32 tensor in row-major order.
type Tensor struct {
	Shape []int64
	Data  []float32
}

// sessionFor returns the cached session for p and outputs, creating it on first use.
func (r *SessionCache) sessionFor(p *Plan, outputs []string) (*session, error) {
	key := p.Key + "\x00" + strings.Join(outputs, "\x00")
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("model: run: runtime is closed")
	}
	if s, ok := r.sessions[key]; ok {
		return s, nil
	}
	so, err := r.sessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	ds, err := ort.NewDynamicAdvancedSessionWithONNXData(p.raw, p.Inputs, outputs, so)
	if err != nil {
		return nil, fmt.Errorf("model: create session: %w", err)
	}
	s := &session{s: ds, inputs: p.Inputs, outputs: outputs}
	r.sessions[key] = s
	return s, nil
}

func (r *SessionCache) sessionOptions() (so *ort.SessionOptions, err error) {
	so, err = ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("model: session options: %w", err)
	}
	defer func() {
		if err != nil {
			so.Destroy()
			so = nil
		}
	}()
	if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll); err != nil {
		return nil, fmt.Errorf("model: session options: %w", err)
	}
	if err := so.SetIntraOpNumThreads(r.opts.Threads); err != nil {
		return nil, fmt.Errorf("model: session options: threads %d: %w", r.opts.Threads, err)
	}
	// Idle intra-op threads sleep rather than spin. The process shares its CPUs, with its own goroutines and
	// often with other jobs, and a spinning pool then waits on its descheduled threads: on 2 busy CPUs,
	// 2 spinning threads ran 30-45% slower than 1 thread, 2 sleeping ones about as fast. On idle CPUs
	// sleeping costs nothing measurable at batch 256 and about 0.3 ms a call at batch 1.
	if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
		return nil, fmt.Errorf("model: session options: %w", err)
	}
	if r.cuda {
		co, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return nil, fmt.Errorf("model: device cuda: %w", cudaError(err))
		}
		defer co.Destroy()
		if err := so.AppendExecutionProviderCUDA(co); err != nil {
			return nil, fmt.Errorf("model: device cuda: %w", cudaError(err))
		}
	}
	return so, nil
}

// Run evaluates plan p on inputs (every plan input, any batch size) and returns the requested outputs (all
// of p.Outputs when outputs is nil), which must be float32. Input data is handed to ONNX Runtime without a
// copy; outputs are Go memory, copied once from ONNX Runtime's buffers.
func (r *SessionCache) Run(p *Plan, inputs map[string]Tensor, outputs []string) (map[string]Tensor, error) {
	if outputs == nil && p != nil {
		outputs = p.Outputs
	}
	res := make(map[string]Tensor, len(outputs))
	err := r.run(p, inputs, outputs, func(name string, v ort.Value) error {
		ft, ok := v.(*ort.Tensor[float32])
		if !ok {
			return fmt.Errorf("output %q is not float32", name)
		}
		// GetData is Go memory the binding filled; it outlives the OrtValue destroyed after this.
		res[name] = Tensor{Shape: []int64(ft.GetShape()), Data: ft.GetData()}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// outputMeta is an output's shape and element type.
type outputMeta struct {
	shape []int64
	dtype string
}

// outputMetas runs p and reports only the shapes and element types of the outputs, whatever the types.
func (r *SessionCache) outputMetas(p *Plan, inputs map[string]Tensor) (map[string]outputMeta, error) {
	res := map[string]outputMeta{}
	err := r.run(p, inputs, p.Outputs, func(name string, v ort.Value) error {
		// ONNX Runtime's element type enum is ONNX's TensorProto.DataType.
		res[name] = outputMeta{shape: []int64(v.GetShape()), dtype: dtypeName(pb.TensorProto_DataType(int32(v.DataType())))}
		return nil
	})
	return res, err
}

// run does the work of Run, handing each output to take before destroying it.
func (r *SessionCache) run(p *Plan, inputs map[string]Tensor, outputs []string, take func(string, ort.Value) error) (err error) {
	if p == nil {
		return errors.New("model: run: nil plan")
	}
	if len(outputs) == 0 {
		return errors.New("model: run: no outputs requested")
	}
	for _, o := range outputs {
		if !p.hasOutput(o) {
			return fmt.Errorf("model: run: %q is not an output of the plan (outputs: %s)", o, strings.Join(p.Outputs, ", "))
		}
	}
	for name := range inputs {
		if !contains(p.Inputs, name) {
			return fmt.Errorf("model: run: %q is not an input of the plan (inputs: %s)", name, strings.Join(p.Inputs, ", "))
		}
	}
	vals := make([]ort.Value, len(p.Inputs))
	defer func() {
		for _, v := range vals {
			if v != nil {
				err = errors.Join(err, destroyErr(v.Destroy()))
			}
		}
	}()
	for i, name := range p.Inputs {
		t, ok := inputs[name]
		if !ok {
			return fmt.Errorf("model: run: input %q missing", name)
		}
		n := int64(1)
		for _, d := range t.Shape {
			n *= d
		}
		if len(t.Shape) == 0 || n <= 0 || int64(len(t.Data)) != n {
			return fmt.Errorf("model: run: input %q: %d values for shape %v", name, len(t.Data), t.Shape)
		}
		v, err := ort.NewTensor(ort.NewShape(t.Shape...), t.Data)
		if err != nil {
			return fmt.Errorf("model: run: input %q: %w", name, err)
		}
		vals[i] = v
	}
	s, err := r.sessionFor(p, outputs)
	if err != nil {
		return err
	}
	outs := make([]ort.Value, len(outputs)) // nil: ONNX Runtime allocates, the binding copies to Go memory
	runErr := s.s.Run(vals, outs)
	for i, v := range outs {
		if v == nil || isNilValue(v) {
			continue
		}
		if runErr == nil {
			runErr = take(outputs[i], v)
		}
		err = errors.Join(err, destroyErr(v.Destroy()))
	}
	if runErr != nil {
		return errors.Join(fmt.Errorf("model: run: %w", runErr), err)
	}
	return err
}

// isNilValue reports a Value holding a nil pointer: what the binding leaves in an output it failed to convert
// (a rank-0 tensor, which it cannot represent), with Run's error saying why. Destroying it would panic.
func isNilValue(v ort.Value) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// oneLine folds a multi-line message (ONNX Runtime's often are) into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
