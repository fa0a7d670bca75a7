-- Per template as of usage cutoff $2 (SPEC 2.3, 7.2): usage on the template by others than its
-- creator, of the products any version counts, summed per product class and period bucket (see
-- ratePlan.expand: the SELECT's class and bucket, the WHERE's products), then priced by run $3's
-- rates for the version the template binds to by its created_at: the rows, runtime and spend that
-- count and the exact earnings. $1 run; the usage read as in anomalies_prepare. $4/$5 the shard
-- count/index: a shard keeps its templates. The columns are run_templates'.
WITH bound AS (
  SELECT t.id, t.creator_id, tt.terms_id
    FROM templates t
    JOIN run_terms tt ON tt.run_id = $3 AND tt.program = 'template'
                     AND t.created_at >= tt.valid_from AND t.created_at < tt.valid_to
   WHERE $4::integer = 1 OR creditrecon_shard(t.id, $4) = $5
), buckets AS (
  SELECT b.id, b.creator_id, b.terms_id, {{class}} AS class, {{bucket}} AS bucket,
         count(*) AS rows, sum(e.runtime_seconds) AS runtime_seconds, sum(e.amount_usd) AS usd
    FROM bound b
    JOIN {{usage}} e ON e.template_id = b.id
   WHERE e.product = ANY({{products}}) AND e.user_id <> b.creator_id AND e.occurred_at < $2
     AND NOT EXISTS (SELECT FROM run_anomalies a WHERE a.run_id = $1 AND a.usage_event_id = e.id)
   GROUP BY 1, 2, 3, 4, 5
)
SELECT $1::bigint AS run_id, g.id AS template_id, g.creator_id, sum(g.rows) AS usage_rows,
       sum(g.runtime_seconds) AS runtime_seconds, sum(g.usd) AS spend_usd,
       g.terms_id, sum(g.usd * r.rate) AS earned_usd
  FROM buckets g
  JOIN run_rates r ON r.run_id = $3 AND r.program = 'template' AND r.terms_id = g.terms_id
                  AND r.class = g.class AND r.bucket = g.bucket
 GROUP BY g.id, g.creator_id, g.terms_id;
