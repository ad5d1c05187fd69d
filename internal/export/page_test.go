package export

import (
	"errors"
	"testing"
)

func TestPageLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		limit, want int
		invalid     bool
	}{
		{limit: 0, want: 50},
		{limit: 1, want: 1},
		{limit: 200, want: 200},
		{limit: 201, invalid: true},
		{limit: -1, invalid: true},
		{limit: -50, invalid: true},
	} {
		got, err := pageLimit(tc.limit)
		var e *Error
		switch {
		case tc.invalid && (!errors.As(err, &e) || e.Kind != KindInvalid || e.Fields["limit"] != "must be between 1 and 200"):
			t.Errorf("pageLimit(%d) = %d, %v; want limit refused", tc.limit, got, err)
		case !tc.invalid && (err != nil || got != tc.want):
			t.Errorf("pageLimit(%d) = %d, %v; want %d", tc.limit, got, err, tc.want)
		}
	}
}
