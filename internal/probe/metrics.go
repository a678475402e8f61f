package probe

import (
	"fmt"
	"math"
	"sort"
)

// Verdicts compare a probe's held-out score with its baseline, the best constant prediction.
const (
	Above  = "above"  // better than the baseline by more than noiseZ standard errors
	Chance = "chance" // within noise of the baseline: the concept is not read linearly here
	Below  = "below"  // worse than the baseline by more than noiseZ standard errors: the probe overfits
)

// noiseZ is how many standard errors a difference must exceed to count: about a 2.5% chance, per probe and
// side, of calling a difference that is only noise.
const noiseZ = 2

// Labels counts a concept's labels, over every row given to a fitter (not only the rows kept).
type Labels struct {
	Train SplitLabels `json:"train"`
	Test  SplitLabels `json:"held_out"`
}

// SplitLabels describes the labels of one split: counts of each class for a binary concept, the spread of the
// values for a regression one.
type SplitLabels struct {
	N         int     `json:"n"`
	Positives int     `json:"positives"` // labels >= 0.5
	Mean      float64 `json:"mean"`
	Std       float64 `json:"std"`
	Min       float64 `json:"min"`
	Max       float64 `json:"max"`

	sum, sumSq float64
}

func (s *SplitLabels) add(y float64) {
	if s.N == 0 || y < s.Min {
		s.Min = y
	}
	if s.N == 0 || y > s.Max {
		s.Max = y
	}
	s.N++
	s.sum += y
	s.sumSq += y * y
	if y >= 0.5 {
		s.Positives++
	}
	s.Mean = s.sum / float64(s.N)
	s.Std = math.Sqrt(max(s.sumSq/float64(s.N)-s.Mean*s.Mean, 0))
}

// Negatives is the number of labels below 0.5.
func (s SplitLabels) Negatives() int { return s.N - s.Positives }

// DegenerateError reports a concept no probe can be honestly scored on: a constant label, or too few
// positions of one class.
type DegenerateError struct{ Reason string }

func (e *DegenerateError) Error() string { return "probe: " + e.Reason }

// Check refuses labels a probe cannot learn or be scored on: a label that never varies over the training
// positions, and for a binary concept fewer than minClass training positions of either label. (Held-out
// positions of one label only leave balanced accuracy and AUC undefined: the report says so.)
func (l Labels) Check(binary bool, minClass int) error {
	tr := l.Train
	switch {
	case tr.N == 0:
		return &DegenerateError{"no training position"}
	case tr.Min == tr.Max:
		return &DegenerateError{fmt.Sprintf("the label is %g on all %d training positions: a constant predicts it perfectly, so a probe shows nothing", tr.Min, tr.N)}
	case !binary:
		return nil
	case min(tr.Positives, tr.Negatives()) < minClass:
		return &DegenerateError{fmt.Sprintf("only %d of %d training positions are true and %d false, fewer than --min-class %d of one label: too few to learn or score the concept (use more positions, or another concept)",
			tr.Positives, tr.N, tr.Negatives(), minClass)}
	}
	return nil
}

// evaluation is a probe's held-out score next to its baselines.
type evaluation struct {
	score    float64 // accuracy at 0.5, or R^2 (against the held-out mean)
	baseline float64 // the same metric for the best constant from the training labels
	balanced float64 // binary: mean of the true-positive and true-negative rates
	auc      float64 // binary: ROC AUC
	verdict  string
}

// evaluate scores predictions pred (probabilities for binary concepts) of labels y. ref is the constant the
// baseline predicts: the training split's majority label (binary) or its mean label (regression).
func evaluate(pred, y []float64, binary bool, ref float64) evaluation {
	n := len(y)
	nan := math.NaN()
	e := evaluation{score: nan, baseline: nan, balanced: nan, auc: nan, verdict: ""}
	if n == 0 {
		return e
	}
	if binary {
		return evaluateBinary(pred, y, ref)
	}
	var mean float64
	for _, v := range y {
		mean += v
	}
	mean /= float64(n)
	// The verdict compares squared errors row by row with the baseline's: a paired test, which does not
	// count the spread of the labels twice.
	d := make([]float64, n)
	var sse, sst, sseRef float64
	for i, v := range y {
		sse += (v - pred[i]) * (v - pred[i])
		sst += (v - mean) * (v - mean)
		sseRef += (v - ref) * (v - ref)
		d[i] = (v-ref)*(v-ref) - (v-pred[i])*(v-pred[i])
	}
	if sst > 0 {
		e.score, e.baseline = 1-sse/sst, 1-sseRef/sst
	}
	e.verdict = pairedVerdict(d)
	return e
}

func evaluateBinary(pred, y []float64, majority float64) evaluation {
	n := len(y)
	var correct, correctRef, tp, tn, pos float64
	d := make([]float64, n)
	for i, v := range y {
		truth, said := v >= 0.5, pred[i] >= 0.5
		c, cRef := b2f(said == truth), b2f((majority >= 0.5) == truth)
		correct += c
		correctRef += cRef
		d[i] = c - cRef
		if truth {
			pos++
			tp += c
		} else {
			tn += c
		}
	}
	neg := float64(n) - pos
	e := evaluation{score: correct / float64(n), baseline: correctRef / float64(n), balanced: math.NaN(), auc: math.NaN()}
	if pos == 0 || neg == 0 {
		e.verdict = pairedVerdict(d)
		return e
	}
	e.balanced = (tp/pos + tn/neg) / 2
	e.auc = rocAUC(pred, y)
	// Under no relation between predictions and labels, AUC is 0.5 with this standard error (Hanley and
	// McNeil's, at AUC = 0.5): the ranking test does not depend on the 0.5 threshold.
	se := math.Sqrt((pos + neg + 1) / (12 * pos * neg))
	switch {
	case pairedVerdict(d) == Below:
		e.verdict = Below
	case (e.auc-0.5)/se > noiseZ:
		e.verdict = Above
	default:
		e.verdict = Chance
	}
	return e
}

// pairedVerdict says whether the mean of per-row improvements d over the baseline is above, within or below
// noiseZ standard errors of 0.
func pairedVerdict(d []float64) string {
	n := float64(len(d))
	var m, ss float64
	for _, v := range d {
		m += v
	}
	m /= n
	for _, v := range d {
		ss += (v - m) * (v - m)
	}
	if n < 2 || ss == 0 {
		if m > 0 && n >= 2 {
			return Above
		}
		if m < 0 && n >= 2 {
			return Below
		}
		return Chance
	}
	se := math.Sqrt(ss/(n-1)) / math.Sqrt(n)
	switch z := m / se; {
	case z > noiseZ:
		return Above
	case z < -noiseZ:
		return Below
	}
	return Chance
}

// rocAUC is the probability that a random positive scores above a random negative (ties count half): the
// Mann-Whitney U statistic over the number of pairs, from average ranks.
func rocAUC(score, y []float64) float64 {
	n := len(y)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return score[idx[a]] < score[idx[b]] })
	var rankSum, pos float64
	for i := 0; i < n; {
		j := i
		for j < n && score[idx[j]] == score[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j averaged
		for k := i; k < j; k++ {
			if y[idx[k]] >= 0.5 {
				rankSum += avg
				pos++
			}
		}
		i = j
	}
	neg := float64(n) - pos
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// GapWarnings names the probes whose training score exceeds the held-out one by more than maxGap: they fit
// the training positions in ways that do not carry to others (a stronger penalty may help).
func GapWarnings(probes []Probe, maxGap float64) []string {
	var out []string
	for _, p := range probes {
		out = appendGapWarning(out, p.Module, p.Metric, p.TrainScore, p.Score, maxGap)
	}
	return out
}

// appendGapWarning appends the warning of one probe whose training score exceeds the held-out one by more
// than maxGap.
func appendGapWarning(out []string, module, metric string, train, score, maxGap float64) []string {
	if gap := train - score; gap > maxGap {
		out = append(out, fmt.Sprintf("%s: training %s %.4f, held-out %.4f: a gap of %.4f, more than --max-gap %g (it fits its training positions far better than others: trust the held-out score)",
			module, metric, train, score, gap, maxGap))
	}
	return out
}
