"""Runbooks as data: the policy's `runbooks:` section, planning one for an incident, and the actions' executors.

registry      the registered actions; anything else is a policy error
steps         one model per action (`action:` discriminates), with `compensate:`
models        Runbook (guardrails + steps), the `runbooks:` section of tocsin.policy.models.Policy
thresholds    a verify condition: '< 0.05', '>= 99%'
plan          plan_runbook / plan_from_policy: templates rendered, outside any workflow (Jinja)
planned       RunbookPlan and the Planned* steps: the runbook workflow's input; describe() for dry runs
guardrails    pure checks: target_replicas, check_namespace, next_run_allowed_at
errors        PermanentRemediationError / RetryableRemediationError (and GuardrailViolation)
kubernetes    the Kubernetes protocol, apply_scale, wait_for_rollout, rollout_status_of
kubernetes_api  HttpKubernetes: the protocol over apps/v1 with lightkube
kubeconfig    credentials: kubeconfig files or the in-cluster service account
http_action   execute_http: the `http` step, secrets read from the environment as it is sent
verify        evaluate / advance (pure) for the `verify` step
verify_query  query_prometheus (I/O) for the `verify` step, through tocsin.prometheus
"""
