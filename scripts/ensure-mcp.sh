# Sourced by scripts/test: makes the real MCP server the tool tests use available, pinned, from
# npm (no download at test time). Exports STEPHOOK_TEST_MCP_EVERYTHING, the server's entry point,
# unless it is set already or node/npm are missing (the tests then say they skipped).
MCP_EVERYTHING_VERSION="2026.8.31"
if [ -z "${STEPHOOK_TEST_MCP_EVERYTHING:-}" ] && command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    mcp_dir="target/mcp-servers"
    mcp_entry="$mcp_dir/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
    if [ ! -f "$mcp_entry" ] || ! grep -q "\"version\": \"$MCP_EVERYTHING_VERSION\"" "$mcp_dir/node_modules/@modelcontextprotocol/server-everything/package.json" 2>/dev/null; then
        echo "installing @modelcontextprotocol/server-everything@$MCP_EVERYTHING_VERSION (npm) into $mcp_dir" >&2
        mkdir -p "$mcp_dir"
        npm install --silent --no-audit --no-fund --prefix "$mcp_dir" "@modelcontextprotocol/server-everything@$MCP_EVERYTHING_VERSION" >&2
    fi
    if [ -f "$mcp_entry" ]; then
        STEPHOOK_TEST_MCP_EVERYTHING="$(cd "$(dirname "$mcp_entry")" && pwd)/index.js"
        export STEPHOOK_TEST_MCP_EVERYTHING
    fi
fi
