// Package npy reads and writes NumPy .npy files holding float32 arrays, and
// appends rows to such files in place, so that lczerolens's outputs load with
// numpy.load without any conversion step.
//
// Only the one dtype lczerolens produces is supported: little-endian float32
// ('<f4') in C order. Read accepts the headers numpy writes (format versions
// 1.0, 2.0 and 3.0) and rejects every other dtype or layout with an error
// naming what it found.
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

const (
	magic = "\x93NUMPY"
	// preludeLen is the magic, the two version bytes and the v1 header length.
	preludeLen = len(magic) + 2 + 2
	// align is what numpy pads the header to (numpy.lib.format.ARRAY_ALIGN),
	// so memory-mapped data is aligned.
	align = 64
	// growthDigits is numpy's GROWTH_AXIS_MAX_DIGITS: the header reserves
	// room for a row count of up to 21 digits, so rewriting the count never
	// changes the header length and never moves the data.
	growthDigits = 21
	// maxHeaderLen bounds what Read allocates for a header; numpy itself
	// refuses headers above 10000 bytes by default.
	maxHeaderLen = 1 << 20
	// maxElems keeps byte counts within int64 and int on every platform.
	maxElems = math.MaxInt32 * 64
)

// ErrFormat is wrapped by every error Read returns for input that is not a
// supported NPY file (as opposed to an I/O error).
var ErrFormat = errors.New("unsupported or malformed npy data")

// header returns the complete header (magic through the final newline) for a
// float32 C-order array of the given shape, exactly as numpy.save writes it.
func header(shape []int) ([]byte, error) {
	var d bytes.Buffer
	d.WriteString("{'descr': '<f4', 'fortran_order': False, 'shape': (")
	for i, n := range shape {
		if i > 0 {
			d.WriteString(", ")
		}
		d.WriteString(strconv.Itoa(n))
	}
	if len(shape) == 1 {
		d.WriteByte(',')
	}
	d.WriteString("), }")
	if len(shape) > 0 {
		if n := growthDigits - len(strconv.Itoa(shape[0])); n > 0 {
			d.Write(bytes.Repeat([]byte{' '}, n))
		}
	}
	total := preludeLen + d.Len() + 1
	pad := (align - total%align) % align
	hlen := d.Len() + pad + 1
	if hlen > math.MaxUint16 {
		return nil, fmt.Errorf("npy: header for shape %v is %d bytes, more than a version 1.0 header holds", shape, hlen)
	}
	out := make([]byte, 0, preludeLen+hlen)
	out = append(out, magic...)
	out = append(out, 1, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(hlen))
	out = append(out, d.Bytes()...)
	for range pad {
		out = append(out, ' ')
	}
	return append(out, '\n'), nil
}

// numElems returns the product of shape, or an error if a dimension is
// negative or the product is too large to address.
func numElems(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > maxElems/d {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
		n *= d
	}
	return n, nil
}

// Write writes data as a version 1.0 NPY file of the given shape (C order,
// '<f4'). The output is byte-identical to numpy.save for the same array.
func Write(w io.Writer, shape []int, data []float32) error {
	n, err := numElems(shape)
	if err != nil {
		return fmt.Errorf("npy: write: %w", err)
	}
	if n != len(data) {
		return fmt.Errorf("npy: write: shape %v holds %d values, got %d", shape, n, len(data))
	}
	h, err := header(shape)
	if err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return fmt.Errorf("npy: write header: %w", err)
	}
	var buf [32 << 10]byte
	for len(data) > 0 {
		k := min(len(data), len(buf)/4)
		encode(buf[:4*k], data[:k])
		if _, err := w.Write(buf[:4*k]); err != nil {
			return fmt.Errorf("npy: write data: %w", err)
		}
		data = data[k:]
	}
	return nil
}

// encode stores src little-endian into dst, which must hold 4*len(src) bytes.
func encode(dst []byte, src []float32) {
	_ = dst[4*len(src)-1]
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

// Decode fills dst with the little-endian float32 values of src (4 bytes each): the data of an array's rows.
func Decode(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// ReadRowAt reads row i of an array whose rows hold size values each and whose data start at off
// (ReadHeader's dataOffset), without reading the other rows.
func ReadRowAt(r io.ReaderAt, off int64, i, size int) ([]float32, error) {
	buf := make([]byte, 4*size)
	if n, err := r.ReadAt(buf, off+int64(i)*int64(size)*4); n < len(buf) {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("npy: row %d: %w", i, err)
	}
	out := make([]float32, size)
	Decode(out, buf)
	return out, nil
}

// Read reads a whole NPY file holding a little-endian float32 C-order array.
// Data after the array is an error, because in lczerolens's outputs it means
// a file longer than its header says, i.e. an interrupted write.
func Read(r io.Reader) (shape []int, data []float32, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	shape, _, err = readHeader(br)
	if err != nil {
		return nil, nil, err
	}
	n, _ := numElems(shape) // checked by readHeader
	// Grow as data arrives rather than trusting the header's size, so a
	// short or hostile file cannot make Read allocate more than it holds.
	data = make([]float32, 0, min(n, 1<<16))
	var buf [32 << 10]byte
	for len(data) < n {
		k := min(n-len(data), len(buf)/4)
		got, err := io.ReadFull(br, buf[:4*k])
		m := len(data)
		data = slices.Grow(data, got/4)[:m+got/4]
		Decode(data[m:], buf[:4*(got/4)])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, nil, fmt.Errorf("npy: read data: shape %v needs %d values, file ends after %d: %w", shape, n, len(data), ErrFormat)
			}
			return nil, nil, fmt.Errorf("npy: read data: %w", err)
		}
	}
	if _, err := br.ReadByte(); err == nil {
		return nil, nil, fmt.Errorf("npy: read data: bytes after the %d values of shape %v: %w", n, shape, ErrFormat)
	} else if !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("npy: read data: %w", err)
	}
	return shape, data, nil
}

// ReadHeader reads the header of an NPY file holding a little-endian float32
// C-order array and returns its shape and the offset of its data, leaving r
// there, so that callers can stream the rows instead of reading them all.
func ReadHeader(r io.Reader) (shape []int, dataOffset int64, err error) {
	return readHeader(r)
}

// readHeader reads and checks the magic, version and header dictionary and
// returns the shape and the total header length (the data offset).
func readHeader(r io.Reader) (shape []int, dataOffset int64, err error) {
	var pre [len(magic) + 2]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, 0, fmt.Errorf("npy: read magic: %w", formatEOF(err))
	}
	if string(pre[:len(magic)]) != magic {
		return nil, 0, fmt.Errorf("npy: read magic: not an npy file (starts with %q): %w", pre[:len(magic)], ErrFormat)
	}
	major, minor := pre[len(magic)], pre[len(magic)+1]
	var hlen int
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, 0, fmt.Errorf("npy: read header length: %w", formatEOF(err))
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, 0, fmt.Errorf("npy: read header length: %w", formatEOF(err))
		}
		if v := binary.LittleEndian.Uint32(b[:]); v > maxHeaderLen {
			return nil, 0, fmt.Errorf("npy: read header: length %d exceeds %d: %w", v, maxHeaderLen, ErrFormat)
		} else {
			hlen = int(v)
		}
	default:
		return nil, 0, fmt.Errorf("npy: read header: format version %d.%d not supported: %w", major, minor, ErrFormat)
	}
	if minor != 0 {
		return nil, 0, fmt.Errorf("npy: read header: format version %d.%d not supported: %w", major, minor, ErrFormat)
	}
	h := make([]byte, hlen)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, 0, fmt.Errorf("npy: read header: %w", formatEOF(err))
	}
	shape, err = parseHeader(h)
	if err != nil {
		return nil, 0, fmt.Errorf("npy: read header: %w", err)
	}
	prefix := preludeLen
	if major > 1 {
		prefix += 2
	}
	return shape, int64(prefix + hlen), nil
}

func formatEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated file: %w", ErrFormat)
	}
	return err
}

// parseHeader parses the Python dict literal numpy writes, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, and checks
// it describes a float32 little-endian C-order array.
func parseHeader(h []byte) ([]int, error) {
	p := &parser{s: h}
	var descr string
	var fortran, haveDescr, haveFortran, haveShape bool
	var shape []int
	if !p.eat('{') {
		return nil, p.fail("expected '{'")
	}
	for !p.eat('}') {
		key, ok := p.str()
		if !ok {
			return nil, p.fail("expected a quoted key")
		}
		if !p.eat(':') {
			return nil, p.fail("expected ':'")
		}
		switch key {
		case "descr":
			if descr, ok = p.str(); !ok {
				return nil, p.fail("descr: expected a quoted dtype string")
			}
			haveDescr = true
		case "fortran_order":
			switch {
			case p.word("True"):
				fortran = true
			case p.word("False"):
				fortran = false
			default:
				return nil, p.fail("fortran_order: expected True or False")
			}
			haveFortran = true
		case "shape":
			var err error
			if shape, err = p.tuple(); err != nil {
				return nil, err
			}
			haveShape = true
		default:
			return nil, p.fail(fmt.Sprintf("unexpected key %q", key))
		}
		if !p.eat(',') {
			if !p.eat('}') {
				return nil, p.fail("expected ',' or '}'")
			}
			break
		}
	}
	p.space()
	if p.i != len(p.s) {
		return nil, p.fail("unexpected text after the dictionary")
	}
	switch {
	case !haveDescr || !haveFortran || !haveShape:
		return nil, fmt.Errorf("dictionary %q lacks descr, fortran_order or shape: %w", h, ErrFormat)
	case descr != "<f4":
		return nil, fmt.Errorf("dtype %q not supported, only little-endian float32 '<f4': %w", descr, ErrFormat)
	case fortran:
		return nil, fmt.Errorf("fortran_order arrays not supported, only C order: %w", ErrFormat)
	}
	if _, err := numElems(shape); err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrFormat)
	}
	return shape, nil
}

// parser is a cursor over a header dictionary. It accepts only the literal
// forms numpy writes (and the trailing 'L' of Python 2 integers).
type parser struct {
	s []byte
	i int
}

func (p *parser) fail(msg string) error {
	return fmt.Errorf("at byte %d of %q: %s: %w", p.i, p.s, msg, ErrFormat)
}

func (p *parser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *parser) eat(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) word(w string) bool {
	p.space()
	if bytes.HasPrefix(p.s[p.i:], []byte(w)) {
		p.i += len(w)
		return true
	}
	return false
}

// str reads a quoted string without escapes, which is all numpy writes for
// the keys and simple dtypes.
func (p *parser) str() (string, bool) {
	p.space()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", false
	}
	q := p.s[p.i]
	end := bytes.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", false
	}
	v := p.s[p.i+1 : p.i+1+end]
	if bytes.IndexByte(v, '\\') >= 0 {
		return "", false
	}
	p.i += end + 2
	return string(v), true
}

func (p *parser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, p.fail("shape: expected '('")
	}
	shape := []int{}
	for !p.eat(')') {
		p.space()
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if start == p.i {
			return nil, p.fail("shape: expected a non-negative integer")
		}
		n, err := strconv.ParseInt(string(p.s[start:p.i]), 10, 64)
		if err != nil || n > maxElems {
			return nil, p.fail("shape: dimension out of range")
		}
		if p.i < len(p.s) && p.s[p.i] == 'L' {
			p.i++
		}
		shape = append(shape, int(n))
		if !p.eat(',') {
			if !p.eat(')') {
				return nil, p.fail("shape: expected ',' or ')'")
			}
			break
		}
	}
	if len(shape) > 64 {
		return nil, p.fail("shape: more than 64 dimensions")
	}
	return shape, nil
}
