// Temporary: pins dependencies while packages are written in parallel. Removed before landing.
package deps

import (
	_ "github.com/aws/aws-sdk-go-v2/aws"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	_ "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/jmoiron/sqlx"
	_ "github.com/johannesboyne/gofakes3"
	_ "github.com/lib/pq"
	_ "github.com/mattn/go-isatty"
	_ "github.com/pressly/goose/v3"
	_ "github.com/prometheus/client_golang/prometheus/push"
	_ "github.com/robfig/cron/v3"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/shopspring/decimal"
	_ "k8s.io/api/batch/v1"
	_ "sigs.k8s.io/yaml"
)
