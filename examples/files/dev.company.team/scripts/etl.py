"""The team's ETL: a stand-in that shows a namespace file promoted with its flow."""

rows = [{"id": 1, "amount": 40}, {"id": 2, "amount": 125}]
total = sum(row["amount"] for row in rows)
print(f"loaded {len(rows)} rows, total {total}")
