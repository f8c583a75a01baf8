#!/usr/bin/env bash
# Prints the URL of the local PostgreSQL used by the tests, when one answers on 127.0.0.1:5432.
if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  echo "postgresql+psycopg://postgres@127.0.0.1:5432/test"
fi
