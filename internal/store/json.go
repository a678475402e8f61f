package store

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// The encoders below append to a reused buffer so that writing a position
// allocates nothing per value; encoding/json would box every float.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendFloat appends v as printed by strconv.FormatFloat(v, 'g', -1, 32).
// JSON has no NaN or infinities, so those are written as the strings "NaN",
// "Infinity" and "-Infinity": the output stays valid JSON, nothing is lost,
// Python's float() and numpy's float32 conversion parse them back, and a jq
// program doing arithmetic on them fails loudly instead of reading 0.
func appendFloat(b []byte, v float32) []byte {
	switch {
	case v != v:
		return append(b, `"NaN"`...)
	case v > math.MaxFloat32:
		return append(b, `"Infinity"`...)
	case v < -math.MaxFloat32:
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
}

// appendNested appends data as nested JSON arrays of the given shape
// (C order); a scalar shape gives a bare number.
func appendNested(b []byte, shape []int, data []float32) []byte {
	if len(shape) == 0 {
		return appendFloat(b, data[0])
	}
	b = append(b, '[')
	if len(shape) == 1 {
		for i, v := range data {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendFloat(b, v)
		}
		return append(b, ']')
	}
	stride := len(data) / shape[0]
	for i := range shape[0] {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNested(b, shape[1:], data[i*stride:(i+1)*stride])
	}
	return append(b, ']')
}

func appendShape(b []byte, shape []int) []byte {
	b = append(b, '[')
	for i, d := range shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(d), 10)
	}
	return append(b, ']')
}

// appendMeta appends the positions.jsonl object for one position.
func appendMeta(b []byte, m PositionMeta) []byte {
	b = append(b, `{"source":`...)
	b = appendString(b, m.Source)
	b = append(b, `,"record":`...)
	b = strconv.AppendInt(b, int64(m.Record), 10)
	b = append(b, `,"game":`...)
	b = strconv.AppendInt(b, int64(m.Game), 10)
	b = append(b, `,"ply":`...)
	b = strconv.AppendInt(b, int64(m.Ply), 10)
	b = append(b, `,"fen":`...)
	b = appendString(b, m.FEN)
	b = append(b, `,"move":`...)
	if m.Move == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *m.Move)
	}
	if p := m.Puzzle; p != nil {
		b = append(b, `,"puzzle_id":`...)
		b = appendString(b, p.ID)
		b = append(b, `,"rating":`...)
		b = strconv.AppendInt(b, int64(p.Rating), 10)
		b = append(b, `,"themes":`...)
		b = appendStrings(b, p.Themes)
		b = append(b, `,"solution":`...)
		b = appendStrings(b, p.Solution)
	}
	return append(b, '}')
}

// appendStrings appends a JSON array of strings.
func appendStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendError appends the errors.jsonl object for one bad record.
func appendError(b []byte, e ErrorRecord) []byte {
	b = append(b, `{"source":`...)
	b = appendString(b, e.Source)
	b = append(b, `,"record":`...)
	b = strconv.AppendInt(b, int64(e.Record), 10)
	b = append(b, `,"game":`...)
	b = strconv.AppendInt(b, int64(e.Game), 10)
	b = append(b, `,"line":`...)
	b = strconv.AppendInt(b, int64(e.Line), 10)
	b = append(b, `,"reason":`...)
	b = appendString(b, e.Reason)
	return append(b, '}')
}

// AppendJSONResult appends `"KEY":{"dtype":"json","data":VALUE}`, the form of a JSON-only result (value is
// valid JSON, written as it is).
func AppendJSONResult(b []byte, key string, value []byte) []byte {
	b = appendString(b, key)
	b = append(b, `:{"dtype":"json","data":`...)
	b = append(b, value...)
	return append(b, '}')
}

// AppendResultJSON appends `"KEY":{"dtype":"float32","shape":[...],"data":[...]}` with data nested to the
// shape: the form results take in results.jsonl and in analyse's JSON.
func AppendResultJSON(b []byte, key string, shape []int, data []float32) []byte {
	b = appendString(b, key)
	b = append(b, `:{"dtype":"float32","shape":`...)
	b = appendShape(b, shape)
	b = append(b, `,"data":`...)
	b = appendNested(b, shape, data)
	return append(b, '}')
}
