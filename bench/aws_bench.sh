#!/bin/sh
# bench/aws_bench.sh — aws.FargateCluster's start and close on moto (127.0.0.1,
# tests/support/moto_ecs.py with its ECS agent running the tasks here):
# bench/aws_bench's RESULT lines. Needs Python's moto and boto3.
#     BUILD=build sh bench/aws_bench.sh [ROUNDS]
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$here/tests/support/moto_ecs.py" "$port" --agent 2>/dev/null &
moto=$!
trap 'kill $moto 2>/dev/null' EXIT
python3 -c "
import socket, time
for _ in range(600):
    try: socket.create_connection(('127.0.0.1', $port), 1).close(); break
    except OSError: time.sleep(0.1)"
home=$(mktemp -d)
env -u AWS_PROFILE -u AWS_SESSION_TOKEN HOME="$home" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
    AWS_REGION=us-east-1 AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_EC2_METADATA_DISABLED=true \
    "$BUILD/bench/aws_bench" "${1:-3}" | grep RESULT
rm -rf "$home"
