#!/usr/bin/env bash
# HugeSync on AWS Batch: the shards as an array job, then finalize as a job
# that depends on the whole array (it starts once every child succeeded).
#
#   hugesync plan /mnt/efs/datasets s3://bucket/datasets --delete --shards 8 \
#       -o s3://bucket/hugesync-plans/run-1/
#   aws batch register-job-definition --cli-input-json file://deploy/aws-batch-job-definition.json
#   deploy/aws-batch-submit.sh QUEUE s3://bucket/hugesync-plans/run-1/ 8 [MEMORY_MIB]
#
# The plan is read from its prefix (each child reads its header and its own
# parts; journals and reports go beside them). MEMORY_MIB is the "memory
# per shard" `plan --shards N` printed, plus 16 MiB for each transfer in
# flight, rounded up to a size Fargate offers (512 MiB steps; 2048 when not
# given). The image is built from the repository's Dockerfile and pushed to
# ECR. Batch sets AWS_BATCH_JOB_ARRAY_INDEX (0-based); the array size is
# passed as AWS_BATCH_JOB_ARRAY_SIZE, which `--shard auto` reads with it, and
# must be the plan's N.
set -euo pipefail
queue=$1 plan=$2 shards=$3 memory=${4:-2048}
array=$(aws batch submit-job \
  --job-name hugesync-shards --job-queue "$queue" --job-definition hugesync \
  --array-properties size="$shards" \
  --parameters plan="$plan" \
  --container-overrides "environment=[{name=AWS_BATCH_JOB_ARRAY_SIZE,value=$shards}],resourceRequirements=[{type=MEMORY,value=$memory},{type=VCPU,value=1}]" \
  --query jobId --output text)
echo "shards: $array"
aws batch submit-job \
  --job-name hugesync-finalize --job-queue "$queue" --job-definition hugesync \
  --depends-on jobId="$array" \
  --parameters plan="$plan" \
  --container-overrides "command=[finalize,--yes,$plan],resourceRequirements=[{type=MEMORY,value=$memory},{type=VCPU,value=1}]" \
  --query jobId --output text
