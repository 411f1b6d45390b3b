package convert

import (
	"reflect"
	"testing"
	"time"
)

func TestParseAppName(t *testing.T) {
	f := func(in, wantApp string, wantLabels map[string]string, wantErr bool) {
		t.Helper()
		app, ls, err := ParseAppName(in)
		if (err != nil) != wantErr {
			t.Fatalf("%q: err %v, want error %v", in, err, wantErr)
		}
		if err == nil && (app != wantApp || !reflect.DeepEqual(ls, wantLabels)) {
			t.Errorf("%q: got %q %v, want %q %v", in, app, ls, wantApp, wantLabels)
		}
	}
	f("shop", "shop", map[string]string{}, false)
	f("shop{}", "shop", map[string]string{}, false)
	f("shop{env=prod, region=eu}", "shop", map[string]string{"env": "prod", "region": "eu"}, false)
	f(`shop{msg="a,b=c"}`, "shop", map[string]string{"msg": "a,b=c"}, false)
	f("shop{otel.scope.name=com.grafana/go}", "shop", map[string]string{"otel.scope.name": "com.grafana/go"}, false)
	f("shop{__tenant__=x,__profile_type__=y,__session_id__=s}", "shop", map[string]string{"__session_id__": "s"}, false)
	f("shop{env=prod", "", nil, true)
	f("shop{=x}", "", nil, true)
}

func TestParseTime(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	f := func(in string, want time.Time) {
		t.Helper()
		got, err := ParseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: got %v %v, want %v", in, got, err, want)
		}
	}
	f("1772366400", at.Truncate(time.Second))
	f("1772366400123", at.Truncate(time.Millisecond))
	f("1772366400123456", at.Truncate(time.Microsecond))
	f("1772366400123456789", at)
	if _, err := ParseTime("soon"); err == nil {
		t.Error("want error for non-numeric time")
	}
}
