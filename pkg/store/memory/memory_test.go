package memory_test

import (
	"testing"
	"time"

	"github.com/lambdatunnel/lambdatunnel/pkg/store"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/memory"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return memory.New(now)
	})
}
