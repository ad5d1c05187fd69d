package config

import (
	"strings"
	"testing"
	"time"
)

func TestScheduleConfig(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ScheduleSyncInterval != 30*time.Second || c.ScheduleCheckInterval != time.Minute || c.ScheduleAllowEvery {
		t.Fatalf("defaults: sync %s, check %s, every %v", c.ScheduleSyncInterval, c.ScheduleCheckInterval, c.ScheduleAllowEvery)
	}
	c, err = Load(env(map[string]string{"SCHEDULE_SYNC_INTERVAL": "1s", "SCHEDULE_CHECK_INTERVAL": "2s", "SCHEDULE_ALLOW_EVERY": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ScheduleSyncInterval != time.Second || c.ScheduleCheckInterval != 2*time.Second || !c.ScheduleAllowEvery {
		t.Fatalf("set: %+v", c)
	}
	// A change must take effect within a minute.
	for name, v := range map[string]string{"SCHEDULE_SYNC_INTERVAL": "2m", "SCHEDULE_CHECK_INTERVAL": "500ms", "SCHEDULE_ALLOW_EVERY": "yes please"} {
		_, err := Load(env(map[string]string{name: v}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v, want an error naming it", name, v, err)
		}
	}
}
