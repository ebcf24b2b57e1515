# Shared by the bench scripts: `need_count NAME VALUE LO HI` stops the script with a clear
# message (exit 2) unless VALUE is a whole number in [LO, HI].
need_count() {
  if ! [[ "$2" =~ ^[0-9]+$ ]] || (( 10#$2 < $3 || 10#$2 > $4 )); then
    echo "$1 \`$2\`: expected a whole number from $3 to $4" >&2
    exit 2
  fi
}
