"""One-command deploy to Databricks Apps (`scripts/deploy`, `python -m services.deploy`).

| module | job |
|---|---|
| `__main__` | flags, the order of the steps, exit codes |
| `stage` | the deploy set in a local folder (`--stage-only`), with `web_assets` for web/vendor |
| `upload` | the workspace folder made equal to the staged set, only changed files sent |
| `app_api` | the app, its token secret and resource, the deployment |
| `errors`, `progress` | what is printed: steps, and failures with a hint |
"""
