#!/usr/bin/env bash
# HugeSync on AWS Batch: the shards as an array job, then finalize as a job
# that depends on the whole array (it starts once every child succeeded).
#
#   aws batch register-job-definition --cli-input-json file://deploy/aws-batch-job-definition.json
#   deploy/aws-batch-submit.sh QUEUE /mnt/efs/plan.json s3://bucket/hugesync-reports/run-1/ 8
#
# The plan must be readable by every job at the same path (EFS, or bake it
# into the image), and so must the plan's source. Batch sets
# AWS_BATCH_JOB_ARRAY_INDEX (0-based); the array size is passed as
# AWS_BATCH_JOB_ARRAY_SIZE, which `--shard auto` reads.
set -euo pipefail
queue=$1 plan=$2 reports=$3 shards=$4
array=$(aws batch submit-job \
  --job-name hugesync-shards --job-queue "$queue" --job-definition hugesync \
  --array-properties size="$shards" \
  --parameters plan="$plan",reports="$reports" \
  --container-overrides "environment=[{name=AWS_BATCH_JOB_ARRAY_SIZE,value=$shards}]" \
  --query jobId --output text)
echo "shards: $array"
aws batch submit-job \
  --job-name hugesync-finalize --job-queue "$queue" --job-definition hugesync \
  --depends-on jobId="$array" \
  --parameters plan="$plan",reports="$reports" \
  --container-overrides "command=[finalize,$plan,--report-dir,$reports]" \
  --query jobId --output text
