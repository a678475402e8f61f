package lc0

import (
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/lczerolens/lczerolens/internal/lc0/pblczero"
)

// Description summarises a weight file the way lc0's describenet does: format fields, body and head sizes,
// training parameters.
type Description struct {
	MinVersion      string `json:"min_version"` // "v0.21.0"
	License         string `json:"license,omitempty"`
	WeightsEncoding string `json:"weights_encoding,omitempty"` // file default ("LINEAR16"), else the input layer's

	// Format fields by lc0's enum names, after lc0's upgrade of older files; "" when unset.
	Input             string `json:"input,omitempty"`
	Network           string `json:"network,omitempty"`
	Policy            string `json:"policy,omitempty"`
	Value             string `json:"value,omitempty"`
	MovesLeft         string `json:"moves_left,omitempty"`
	DefaultActivation string `json:"default_activation,omitempty"`
	SmolgenActivation string `json:"smolgen_activation,omitempty"`
	FFNActivation     string `json:"ffn_activation,omitempty"`
	InputEmbedding    string `json:"input_embedding,omitempty"`
	InputFormat       int    `json:"input_format"` // lc0's input format number (see Net.InputFormat)

	Body     string `json:"body"`                // "residual", "attention" or "onnx" (a file carrying an ONNX model)
	Blocks   int    `json:"blocks,omitempty"`    // residual blocks
	SEBlocks int    `json:"se_blocks,omitempty"` // residual blocks with squeeze-and-excitation
	Filters  int    `json:"filters,omitempty"`   // residual filters

	// Attention body.
	Encoders     int  `json:"encoders,omitempty"`
	EncoderHeads int  `json:"encoder_heads,omitempty"`
	Embedding    int  `json:"embedding,omitempty"`
	DModel       int  `json:"d_model,omitempty"`
	DFF          int  `json:"dff,omitempty"`
	Smolgen      bool `json:"smolgen,omitempty"`

	PolicyHead     string   `json:"policy_head,omitempty"` // "convolution", "classical" (fully connected) or "attention"
	PolicyEncoders int      `json:"policy_encoders,omitempty"`
	ValueHead      string   `json:"value_head,omitempty"` // "wdl" or "classical"
	MovesLeftHead  bool     `json:"moves_left_head"`
	PolicyHeads    []string `json:"policy_heads,omitempty"` // selectable by Options.PolicyHead
	ValueHeads     []string `json:"value_heads,omitempty"`  // selectable by Options.ValueHead

	Params int64 `json:"params"` // weight values in the file

	Training *Training `json:"training,omitempty"` // nil when the file has no training parameters
}

// Training holds the training parameters recorded in a weight file; Has* say which were set.
type Training struct {
	Steps           uint32  `json:"steps"`
	LearningRate    float32 `json:"learning_rate"`
	MSELoss         float32 `json:"mse_loss"`
	PolicyLoss      float32 `json:"policy_loss"`
	Accuracy        float32 `json:"accuracy"`
	Lc0Params       string  `json:"lc0_params,omitempty"`
	HasSteps        bool    `json:"-"`
	HasLearningRate bool    `json:"-"`
	HasMSELoss      bool    `json:"-"`
	HasPolicyLoss   bool    `json:"-"`
	HasAccuracy     bool    `json:"-"`
}

// Describe summarises the net; it never fails, reporting what the file holds even where Convert would not.
func (n *Net) Describe() Description {
	pb := n.Proto
	f := n.format
	v := pb.GetMinVersion()
	d := Description{
		MinVersion:  fmt.Sprintf("v%d.%d.%d", v.GetMajor(), v.GetMinor(), v.GetPatch()),
		License:     pb.GetLicense(),
		InputFormat: n.InputFormat(),
	}
	if pf := pb.GetFormat(); pf != nil && pf.WeightsEncoding != nil {
		d.WeightsEncoding = pb.GetFormat().GetWeightsEncoding().String()
	} else if l := firstLayer(pb.GetWeights()); l != nil {
		d.WeightsEncoding = pblczero.Weights_Layer_LINEAR16.String()
		if l.Encoding != nil {
			d.WeightsEncoding = l.GetEncoding().String()
		}
	}
	name := func(set bool, s fmt.Stringer) string {
		if !set {
			return ""
		}
		return s.String()
	}
	d.Input = name(f.Input != nil, f.GetInput())
	d.Network = name(f.Network != nil, f.GetNetwork())
	d.Policy = name(f.Policy != nil, f.GetPolicy())
	d.Value = name(f.Value != nil, f.GetValue())
	d.MovesLeft = name(f.MovesLeft != nil, f.GetMovesLeft())
	d.DefaultActivation = name(f.DefaultActivation != nil, f.GetDefaultActivation())
	d.SmolgenActivation = name(f.SmolgenActivation != nil, f.GetSmolgenActivation())
	d.FFNActivation = name(f.FfnActivation != nil, f.GetFfnActivation())
	d.InputEmbedding = name(f.InputEmbedding != nil, f.GetInputEmbedding())

	if tp := pb.GetTrainingParams(); tp != nil {
		d.Training = &Training{
			Steps: tp.GetTrainingSteps(), LearningRate: tp.GetLearningRate(), MSELoss: tp.GetMseLoss(),
			PolicyLoss: tp.GetPolicyLoss(), Accuracy: tp.GetAccuracy(), Lc0Params: tp.GetLc0Params(),
			HasSteps: tp.TrainingSteps != nil, HasLearningRate: tp.LearningRate != nil, HasMSELoss: tp.MseLoss != nil,
			HasPolicyLoss: tp.PolicyLoss != nil, HasAccuracy: tp.Accuracy != nil,
		}
	}
	w := pb.GetWeights()
	if w == nil {
		d.Body = "onnx"
		return d
	}
	if len(w.GetEncoder()) > 0 {
		d.Body = "attention"
		d.Encoders = len(w.GetEncoder())
		d.EncoderHeads = int(w.GetHeadcount())
		d.Embedding = layerSize(w.GetIpEmbB())
		d.DModel = layerSize(w.GetEncoder()[0].GetMha().GetQB())
		d.DFF = layerSize(w.GetEncoder()[0].GetFfn().GetDense1B())
		d.Smolgen = w.GetEncoder()[0].GetMha().GetSmolgen() != nil
	} else {
		d.Body = "residual"
		d.Blocks = len(w.GetResidual())
		for _, r := range w.GetResidual() {
			if r.GetSe() != nil {
				d.SEBlocks++
			}
		}
		d.Filters = layerSize(w.GetInput().GetWeights()) / 112 / 9
	}
	d.PolicyHeads, d.ValueHeads = n.HeadNames()
	_, heads, _ := n.policyHeads()
	vanilla := heads["vanilla"]
	switch {
	case f.GetPolicy() == pblczero.NetworkFormat_POLICY_ATTENTION:
		d.PolicyHead = "attention"
		d.PolicyEncoders = len(vanilla.encoders)
	case vanilla.policy1 != nil:
		d.PolicyHead = "convolution"
	default:
		d.PolicyHead = "classical"
	}
	d.ValueHead = "classical"
	if f.GetValue() == pblczero.NetworkFormat_VALUE_WDL {
		d.ValueHead = "wdl"
	}
	d.MovesLeftHead = f.GetMovesLeft() == pblczero.NetworkFormat_MOVES_LEFT_V1 && present(w.GetIp2MovW())
	d.Params = countParams(w.ProtoReflect())
	return d
}

// Lines renders the description as label/value pairs in describenet's order, skipping unset fields.
func (d Description) Lines() [][2]string {
	var out [][2]string
	add := func(label, value string) {
		if value != "" {
			out = append(out, [2]string{label, value})
		}
	}
	add("Minimal Lc0 version", d.MinVersion)
	add("License", d.License)
	add("Weights encoding", d.WeightsEncoding)
	add("Input", d.Input)
	add("Network", d.Network)
	add("Policy", d.Policy)
	add("Value", d.Value)
	add("MLH", d.MovesLeft)
	add("Default activation", d.DefaultActivation)
	add("Smolgen activation", d.SmolgenActivation)
	add("FFN activation", d.FFNActivation)
	add("Input embedding", d.InputEmbedding)
	if t := d.Training; t != nil {
		if t.HasSteps {
			add("Training steps", strconv.FormatUint(uint64(t.Steps), 10))
		}
		if t.HasLearningRate {
			add("Learning rate", fmtFloat(t.LearningRate))
		}
		if t.HasMSELoss {
			add("MSE loss", fmtFloat(t.MSELoss))
		}
		if t.HasPolicyLoss {
			add("Policy loss", fmtFloat(t.PolicyLoss))
		}
		if t.HasAccuracy {
			add("Accuracy", fmtFloat(t.Accuracy))
		}
		add("Lc0 params", t.Lc0Params)
	}
	switch d.Body {
	case "attention":
		add("Encoders", strconv.Itoa(d.Encoders))
		add("Encoder heads", strconv.Itoa(d.EncoderHeads))
		add("Embedding size", strconv.Itoa(d.Embedding))
		add("Dmodel", strconv.Itoa(d.DModel))
		add("Encoder DFF", strconv.Itoa(d.DFF))
		if d.Smolgen {
			add("Smolgen", "yes")
		}
	case "residual":
		add("Blocks", strconv.Itoa(d.Blocks))
		if d.SEBlocks > 0 {
			add("SE blocks", strconv.Itoa(d.SEBlocks))
		}
		add("Filters", strconv.Itoa(d.Filters))
	}
	add("Policy head", d.PolicyHead)
	if d.PolicyEncoders > 0 {
		add("Policy encoders", strconv.Itoa(d.PolicyEncoders))
	}
	add("Value head", d.ValueHead)
	if d.Body != "onnx" {
		add("Moves-left head", map[bool]string{true: "present", false: "absent"}[d.MovesLeftHead])
	}
	if len(d.PolicyHeads) > 1 || len(d.ValueHeads) > 1 {
		add("Policy heads", strings.Join(d.PolicyHeads, ", "))
		add("Value heads", strings.Join(d.ValueHeads, ", "))
	}
	if d.Params > 0 {
		add("Parameters", strconv.FormatInt(d.Params, 10))
	}
	return out
}

func fmtFloat(f float32) string { return strconv.FormatFloat(float64(f), 'g', -1, 32) }

// countParams adds up the values of every layer under m.
func countParams(m protoreflect.Message) int64 {
	if l, ok := m.Interface().(*pblczero.Weights_Layer); ok {
		return int64(layerSize(l))
	}
	var n int64
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil || fd.IsMap():
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				n += countParams(v.List().Get(i).Message())
			}
		default:
			n += countParams(v.Message())
		}
		return true
	})
	return n
}

// firstLayer is the body's first layer (input convolution or embedding), whose encoding Describe reports.
func firstLayer(w *pblczero.Weights) *pblczero.Weights_Layer {
	if l := w.GetInput().GetWeights(); l != nil {
		return l
	}
	return w.GetIpEmbW()
}
