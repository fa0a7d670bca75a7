-- Every account's total granted, kept in step with credit_grants by a trigger in the grants' own
-- transaction. Runs and reports read an account's total here instead of summing its whole grant
-- history, so that a night's cost follows the number of accounts, not the years of grants.
-- credit_grants stays the record: its chain trigger still sums the account's grants before each
-- insert, and `creditrecon verify` checks these totals against it.

-- +goose Up
CREATE TABLE credit_accounts (
  program        text          NOT NULL,
  account_id     text          NOT NULL,
  role           text          NOT NULL,
  beneficiary_id text          NOT NULL, -- the greatest of its grants' (one, but for a reassigned template)
  grants         bigint        NOT NULL,
  granted_usd    numeric(14,2) NOT NULL,
  PRIMARY KEY (program, account_id, role)
);

-- Runs as its owner, so that the job needs no privilege to write the totals directly.
-- +goose StatementBegin
CREATE FUNCTION credit_accounts_add() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO credit_accounts AS a (program, account_id, role, beneficiary_id, grants, granted_usd)
  SELECT program, account_id, role, max(beneficiary_id), count(*), sum(amount_usd)
    FROM new_grants
   GROUP BY program, account_id, role
  ON CONFLICT (program, account_id, role) DO UPDATE
    SET beneficiary_id = greatest(a.beneficiary_id, excluded.beneficiary_id),
        grants = a.grants + excluded.grants,
        granted_usd = a.granted_usd + excluded.granted_usd;
  RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER credit_grants_accounts AFTER INSERT ON credit_grants
  REFERENCING NEW TABLE AS new_grants FOR EACH STATEMENT EXECUTE FUNCTION credit_accounts_add();

INSERT INTO credit_accounts (program, account_id, role, beneficiary_id, grants, granted_usd)
SELECT program, account_id, role, max(beneficiary_id), count(*), sum(amount_usd)
  FROM credit_grants
 GROUP BY program, account_id, role;

-- +goose Down
DROP TRIGGER credit_grants_accounts ON credit_grants;
DROP FUNCTION credit_accounts_add();
DROP TABLE credit_accounts;
