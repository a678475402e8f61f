package lens

import (
	"slices"
	"testing"
)

func TestParseLists(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []int
		ok   bool
	}{
		{"", nil, true}, {"3", []int{3}, true}, {"0,5-7", []int{0, 5, 6, 7}, true}, {" 1 , 2 ", []int{1, 2}, true},
		{"7-5", nil, false}, {"-1", nil, false}, {"a", nil, false}, {"1,", nil, false}, {"64", nil, false},
	} {
		got, err := ParseIndexList(tt.in, 64)
		if (err == nil) != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("ParseIndexList(%q) = %v, %v; want %v (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if got, err := ParseSquareList("a1,e4,h8"); err != nil || !slices.Equal(got, []int{0, 28, 63}) {
		t.Errorf("ParseSquareList = %v, %v", got, err)
	}
	if _, err := ParseSquareList("e9"); err == nil {
		t.Error("e9 accepted")
	}
}
