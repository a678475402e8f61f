package cli

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// helpWidth is the widest line that help and tables print, so that they read on a 100-column terminal
// without the terminal's own wrapping breaking their columns.
const helpWidth = 100

// fitHelp makes every command's help and usage fit helpWidth columns. It wraps cobra's rendered text in one
// place rather than asking each command to hard-wrap its strings: flag tables grow with the longest flag
// name, and commands added later are covered without a thought.
func fitHelp(root *cobra.Command) {
	help := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		out := c.OutOrStdout()
		var buf bytes.Buffer
		c.SetOut(&buf)
		help(c, args)
		c.SetOut(out)
		_, _ = io.WriteString(out, fitLines(buf.String(), helpWidth))
	})
	usage := root.UsageFunc()
	root.SetUsageFunc(func(c *cobra.Command) error {
		out, stdout := c.OutOrStderr(), c.OutOrStdout()
		var buf bytes.Buffer
		c.SetOut(&buf) // cobra's usage writes to OutOrStderr, which is the out writer when one is set
		err := usage(c)
		c.SetOut(stdout)
		if _, werr := io.WriteString(out, fitLines(buf.String(), helpWidth)); err == nil {
			err = werr
		}
		return err
	})
}

// fitLines wraps the lines of a help text wider than width. In the Examples section a command line is
// broken between shell words, outside quotes, with a trailing backslash, so that it can still be pasted;
// elsewhere a line is word-wrapped with a hanging indent: under its second column for a two-column row (a
// flag or a command and its description, separated by two or more spaces), else under its own indent.
func fitLines(text string, width int) string {
	var b strings.Builder
	section := ""
	lines := reflowProse(strings.SplitAfter(text, "\n"), width)
	for _, l := range lines {
		body := strings.TrimRight(l, "\n")
		nl := l[len(body):]
		if isHeader(body) {
			section = body
		}
		switch {
		case textWidth(body) <= width:
			b.WriteString(body)
		case section == "Examples:":
			b.WriteString(wrapShell(body, width))
		default:
			b.WriteString(wrapHanging(body, width, hangColumn(body, width)))
		}
		b.WriteString(nl)
	}
	return b.String()
}

// reflowProse re-wraps each paragraph of prose (consecutive unindented lines that are neither section
// headers nor two-column rows such as model info's "nodes     112 (...)") that has a line wider than width, so that a hard-wrapped text a little too wide does not come
// out ragged, every other line a stub; paragraphs that fit keep their line breaks.
func reflowProse(lines []string, width int) []string {
	prose := func(l string) bool {
		body := strings.TrimRight(l, "\n")
		return body != "" && body[0] != ' ' && !isHeader(body) && !strings.Contains(body, "  ")
	}
	var out []string
	for i := 0; i < len(lines); {
		if !prose(lines[i]) {
			out = append(out, lines[i])
			i++
			continue
		}
		j, wide := i, false
		for j < len(lines) && prose(lines[j]) {
			wide = wide || textWidth(strings.TrimRight(lines[j], "\n")) > width
			j++
		}
		if !wide {
			out = append(out, lines[i:j]...)
			i = j
			continue
		}
		var words []string
		for _, l := range lines[i:j] {
			words = append(words, strings.Fields(l)...)
		}
		end := "\n"
		if !strings.HasSuffix(lines[j-1], "\n") {
			end = ""
		}
		wrapped := wrapWords(strings.Join(words, " "), width, 0)
		for k, w := range wrapped {
			if k < len(wrapped)-1 {
				out = append(out, w+"\n")
			} else {
				out = append(out, w+end)
			}
		}
		i = j
	}
	return out
}

// isHeader reports whether a line is a section header of help ("Flags:", "Global Flags:"): short,
// unindented, ending in a colon; a sentence ending in a colon ("With --json, one line:") is prose.
func isHeader(line string) bool {
	return line != "" && line[0] != ' ' && strings.HasSuffix(line, ":") && len(strings.Fields(line)) <= 3
}

// textWidth is the number of columns s takes (one per rune: help text has no wide characters).
func textWidth(s string) int { return utf8.RuneCountInString(s) }

func indentOf(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

// hangColumn is where continuation lines of s start: its second column when it has one that leaves room
// for text, else its indent.
func hangColumn(s string, width int) int {
	ind := indentOf(s)
	if i := strings.Index(s[ind:], "  "); i > 0 {
		col := ind + i
		for col < len(s) && s[col] == ' ' {
			col++
		}
		if col < len(s) && col <= width-30 {
			return textWidth(s[:col])
		}
	}
	return ind
}

// wrapHanging word-wraps s to width, continuation lines indented by hang columns. The first line keeps its
// own spacing (a table row's padding); a word longer than a line stays whole.
func wrapHanging(s string, width, hang int) string {
	return strings.Join(wrapWords(s, width, hang), "\n")
}

// wrapWords is wrapHanging's lines.
func wrapWords(s string, width, hang int) []string {
	pad := strings.Repeat(" ", hang)
	// The prefix up to the hang column is kept as is when it is only the row's first column.
	start := indentOf(s)
	if hang > start && hang <= len(s) && s[hang-1] == ' ' {
		start = hang
	}
	var lines []string
	cur := s[:start]
	fresh := true // cur holds no word yet
	for _, w := range strings.Fields(s[start:]) {
		switch {
		case fresh:
			cur += w
			fresh = false
		case textWidth(cur)+1+textWidth(w) <= width:
			cur += " " + w
		default:
			lines = append(lines, cur)
			cur = pad + w
		}
	}
	return append(lines, cur)
}

// wrapShell breaks a shell command line between words outside quotes, ending broken lines with " \"
// and indenting continuations by four more columns.
func wrapShell(s string, width int) string {
	ind := indentOf(s)
	pad := strings.Repeat(" ", ind+4)
	var words []string
	var cur strings.Builder
	var quote rune
	for _, r := range s[ind:] {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == ' ':
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteRune(r)
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	var lines []string
	line := s[:ind]
	fresh := true
	for _, w := range words {
		switch {
		case fresh:
			line += w
			fresh = false
		case textWidth(line)+1+textWidth(w)+2 <= width:
			line += " " + w
		default:
			lines = append(lines, line+` \`)
			line = pad + w
		}
	}
	return strings.Join(append(lines, line), "\n")
}
