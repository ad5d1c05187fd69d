package jobs

import (
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ownedRedis gives an Asynq scheduler a Redis pool of its own, made from
// the process's shared client's options. A scheduler closes its client on
// Shutdown: built over the shared client, that close is refused and Asynq
// logs the refusal as an error on every clean stop; over a pool of its own
// the close is real and quiet, and the shared client stays open for the
// roles still stopping.
type ownedRedis struct{ opts redis.Options }

func (o ownedRedis) MakeRedisClient() any {
	opts := o.opts
	return redis.NewClient(&opts)
}

// schedulerRedis is the connection option of a scheduler beside rdb.
func schedulerRedis(rdb redis.UniversalClient) (asynq.RedisConnOpt, error) {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return nil, fmt.Errorf("jobs: a scheduler needs a single-node Redis client, not %T", rdb)
	}
	return ownedRedis{opts: *c.Options()}, nil
}
