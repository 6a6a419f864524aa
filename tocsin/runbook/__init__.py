"""Runbooks as data: the policy's `runbooks:` section, planning one for an incident, and the actions' executors.

Policy schema:
registry        the registered actions; anything else is a policy error
steps           one model per action (`action:` discriminates), with `compensate:`
schema          Runbook (guardrails + steps), the `runbooks:` section of tocsin.policy.schema.Policy
thresholds      a verify condition: '< 0.05', '>= 99%'
errors          PermanentRemediationError / RetryableRemediationError (and GuardrailViolation)
Contracts:
plan_contracts  RunbookPlan and the Planned* steps: the runbook workflow's input; describe() for dry runs
contracts       the runbook workflow's input, result, progress and updates
guard_contracts what the runbook guard workflow is asked and answers
kubernetes      the Kubernetes protocol and its models, apply_scale, wait_for_rollout, rollout_status_of
Domain logic (pure):
planner         plan_runbook / plan_from_policy: templates rendered, outside any workflow (Jinja)
guardrails      pure checks: target_replicas, check_namespace, next_run_allowed_at
authorize, approvals, egress  who may approve a step; which hosts an http step may reach
verify          evaluate / advance for the `verify` step
Adapters:
kubernetes_api  HttpKubernetes: the protocol over apps/v1 with lightkube
kubeconfig      credentials: kubeconfig files or the in-cluster service account
http_action     execute_http: the `http` step, secrets read from the environment as it is sent
verify_query    query_prometheus (I/O) for the `verify` step, through tocsin.prometheus
"""
