// The --where language, translated to SQL by a recursive-descent parser.
//
//   expr       := or
//   or         := and ( "or" and )*
//   and        := unary ( "and" unary )*
//   unary      := "not" unary | "(" or ")" | comparison
//   comparison := name op value
//   op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "like"
//   value      := number | 'string' | "string" | true | false
//
// Keywords are case-insensitive; a quote inside a string is written twice.
// The SQL is assembled only from the fixed pieces in sql.hpp and the
// operator table below; every name and literal from the user is bound.
#include "query.hpp"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <charconv>
#include <limits>
#include <string_view>
#include <variant>

#include "sql.hpp"
#include "sqlite.hpp"

namespace simsink::catalog {

namespace {

using sqlite::Statement;

// Deep enough for any hand-written filter, shallow enough that a hostile one
// cannot exhaust the stack.
constexpr int kMaxDepth = 100;

enum class Tok { name, number, string, op, lparen, rparen, end };

struct Token {
    Tok kind = Tok::end;
    std::string text;        // as written (strings: unquoted and unescaped)
    std::size_t column = 0;  // 1-based position of the first character
    std::variant<std::int64_t, double> number;
};

bool is_name_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_op_char(char c) {
    return c == '=' || c == '!' || c == '<' || c == '>' || c == '~';
}

std::string at(std::size_t column) {
    return " at column " + std::to_string(column);
}

bool keyword(const Token& t, std::string_view word) {
    if (t.kind != Tok::name || t.text.size() != word.size()) return false;
    for (std::size_t i = 0; i < word.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(t.text[i])) != word[i]) return false;
    return true;
}

std::string describe(const Token& t) {
    switch (t.kind) {
        case Tok::end:
            return "the end of the expression";
        case Tok::string:
            return "the string '" + t.text + "'";
        default:
            return "'" + t.text + "'";
    }
}

class Lexer {
  public:
    explicit Lexer(std::string_view text) : s_(text) {}

    std::vector<Token> tokens() {
        std::vector<Token> out;
        for (;;) {
            while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
            if (i_ >= s_.size()) break;
            out.push_back(next());
        }
        Token end;
        end.column = s_.size() + 1;
        out.push_back(end);
        return out;
    }

  private:
    Token next() {
        Token t;
        t.column = i_ + 1;
        const char c = s_[i_];
        if (c == '(' || c == ')') {
            t.kind = c == '(' ? Tok::lparen : Tok::rparen;
            t.text = std::string(1, c);
            ++i_;
        } else if (c == '\'' || c == '"') {
            lex_string(t, c);
        } else if (is_digit(c) || c == '.' ||
                   ((c == '-' || c == '+') && i_ + 1 < s_.size() &&
                    (is_digit(s_[i_ + 1]) || s_[i_ + 1] == '.'))) {
            lex_number(t);
        } else if (is_name_start(c)) {
            t.kind = Tok::name;
            const auto start = i_;
            while (i_ < s_.size() && is_name_char(s_[i_])) ++i_;
            t.text = std::string(s_.substr(start, i_ - start));
        } else if (is_op_char(c)) {
            t.kind = Tok::op;
            const auto start = i_;
            while (i_ < s_.size() && is_op_char(s_[i_])) ++i_;
            t.text = std::string(s_.substr(start, i_ - start));
            static constexpr std::string_view kOps[] = {"=", "==", "!=", "<>",
                                                        "<", "<=", ">",  ">="};
            bool known = false;
            for (auto op : kOps) known = known || op == t.text;
            if (!known)
                throw QueryError("unknown operator '" + t.text + "'" + at(t.column) +
                                 " (use = != < <= > >= or like)");
        } else if (c == '&' || c == '|') {
            throw QueryError(std::string("unexpected '") + c + "'" + at(t.column) +
                             " (write 'and' / 'or')");
        } else {
            throw QueryError(std::string("unexpected character '") + c + "'" + at(t.column));
        }
        return t;
    }

    void lex_string(Token& t, char quote) {
        t.kind = Tok::string;
        ++i_;
        for (;;) {
            if (i_ >= s_.size())
                throw QueryError("unterminated string starting" + at(t.column) + " (missing " +
                                 quote + ")");
            const char c = s_[i_++];
            if (c != quote) {
                t.text += c;
            } else if (i_ < s_.size() && s_[i_] == quote) {
                t.text += quote;
                ++i_;
            } else {
                return;
            }
        }
    }

    void lex_number(Token& t) {
        t.kind = Tok::number;
        const auto start = i_;
        if (s_[i_] == '-' || s_[i_] == '+') ++i_;
        bool integral = true;
        while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
        if (i_ < s_.size() && s_[i_] == '.') {
            integral = false;
            ++i_;
            while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            integral = false;
            ++i_;
            if (i_ < s_.size() && (s_[i_] == '-' || s_[i_] == '+')) ++i_;
            while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
        }
        while (i_ < s_.size() && is_name_char(s_[i_])) ++i_;  // swallow junk to report it
        t.text = std::string(s_.substr(start, i_ - start));
        // from_chars rejects a leading '+'.
        std::string_view digits = t.text;
        if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
        const char* first = digits.data();
        const char* last = digits.data() + digits.size();
        if (integral) {
            std::int64_t v = 0;
            auto [p, ec] = std::from_chars(first, last, v);
            if (ec == std::errc() && p == last) {
                t.number = v;
                return;
            }
            if (ec != std::errc::result_out_of_range || p != last)
                throw QueryError("malformed number '" + t.text + "'" + at(t.column));
        }
        double d = 0;
        auto [p, ec] = std::from_chars(first, last, d);
        if (ec != std::errc() || p != last)
            throw QueryError("malformed number '" + t.text + "'" + at(t.column));
        t.number = d;
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

using Binding = std::variant<std::int64_t, double, std::string>;

struct RunColumn {
    std::string_view name;
    const char* sql;
    bool numeric;
};

constexpr RunColumn kRunColumns[] = {
    {"id", "r.id", true},       {"campaign", "c.name", false}, {"status", "r.status", false},
    {"host", "r.host", false},  {"pid", "r.pid", true},        {"started", "r.started", true},
    {"ended", "r.ended", true},
};

struct SqlOp {
    std::string_view written;
    const char* sql;
};

constexpr SqlOp kSqlOps[] = {
    {"=", " = "},   {"==", " = "}, {"!=", " <> "}, {"<>", " <> "},     {"<", " < "},
    {"<=", " <= "}, {">", " > "},  {">=", " >= "}, {"like", " LIKE "},
};

const char* sql_op(const Token& op) {
    const std::string written = keyword(op, "like") ? "like" : op.text;
    for (const auto& o : kSqlOps)
        if (o.written == written) return o.sql;
    return nullptr;  // unreachable: the lexer accepts only the operators above
}

// Where a name's value comes from.
struct Field {
    enum class Source { column, param, result, param_then_result };
    Source source = Source::column;
    const RunColumn* column = nullptr;
    std::string name;  // param / result name
};

class Translator {
  public:
    Translator(sqlite3* db, std::string_view text) : db_(db), tokens_(Lexer(text).tokens()) {}

    // Appends the SQL of the whole expression to `sql` and its values to
    // `bindings`.
    void translate(std::string& sql, std::vector<Binding>& bindings) {
        std::string out;
        parse_or(out, 0);
        if (peek().kind != Tok::end) {
            if (peek().kind == Tok::rparen) throw QueryError("unbalanced ')'" + at(peek().column));
            throw QueryError("expected 'and' or 'or'" + at(peek().column) + ", found " +
                             describe(peek()));
        }
        sql += out;
        for (auto& b : bindings_) bindings.push_back(std::move(b));
    }

  private:
    const Token& peek() const { return tokens_[pos_]; }
    const Token& take() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }

    // `depth` counts the open parentheses and "not"s around the current
    // position: the only constructs that recurse without consuming a
    // comparison.
    void check_depth(int depth) const {
        if (depth > kMaxDepth)
            throw QueryError("expression nested too deeply" + at(peek().column) + " (more than " +
                             std::to_string(kMaxDepth) + " levels of '(' and 'not')");
    }

    void parse_or(std::string& out, int depth) {
        parse_and(out, depth);
        while (keyword(peek(), "or")) {
            take();
            out += " OR ";
            parse_and(out, depth);
        }
    }

    void parse_and(std::string& out, int depth) {
        parse_unary(out, depth);
        while (keyword(peek(), "and")) {
            take();
            out += " AND ";
            parse_unary(out, depth);
        }
    }

    void parse_unary(std::string& out, int depth) {
        if (keyword(peek(), "not")) {
            check_depth(depth + 1);
            take();
            out += "NOT ";
            parse_unary(out, depth + 1);
            return;
        }
        if (peek().kind == Tok::lparen) {
            check_depth(depth + 1);
            const Token open = take();
            out += "(";
            parse_or(out, depth + 1);
            if (peek().kind != Tok::rparen)
                throw QueryError("expected ')'" + at(peek().column) + " to close the '('" +
                                 at(open.column) + ", found " + describe(peek()));
            take();
            out += ")";
            return;
        }
        parse_comparison(out);
    }

    void parse_comparison(std::string& out) {
        const Token name = take();
        if (name.kind != Tok::name || keyword(name, "and") || keyword(name, "or") ||
            keyword(name, "like") || keyword(name, "true") || keyword(name, "false"))
            throw QueryError("expected a name" + at(name.column) + ", found " + describe(name));
        const Field field = resolve(name);

        const Token op = take();
        if (op.kind != Tok::op && !keyword(op, "like"))
            throw QueryError("expected an operator after '" + name.text + "'" + at(op.column) +
                             ", found " + describe(op));
        const bool like = keyword(op, "like");

        const Token value = take();
        Binding bound;
        const char* types = nullptr;
        if (value.kind == Tok::number) {
            bound = std::visit([](auto v) { return Binding(v); }, value.number);
            types = sql::kTypesNumber;
        } else if (value.kind == Tok::string) {
            bound = value.text;
            types = sql::kTypesString;
        } else if (keyword(value, "true") || keyword(value, "false")) {
            bound = std::int64_t{keyword(value, "true") ? 1 : 0};
            types = sql::kTypesBool;
        } else {
            throw QueryError("expected a value after '" + op.text + "'" + at(value.column) +
                             ", found " + describe(value));
        }
        if (like && value.kind != Tok::string)
            throw QueryError("expected a quoted pattern after 'like'" + at(value.column) +
                             ", found " + describe(value));

        const char* op_sql = sql_op(op);
        out += "(";
        switch (field.source) {
            case Field::Source::column:
                check_column_type(*field.column, name, value, like);
                out += field.column->sql;
                out += op_sql;
                out += "?";
                bindings_.push_back(bound);
                break;
            case Field::Source::param:
                emit_field(out, sql::kParamField, field.name, types, op_sql, bound);
                break;
            case Field::Source::result:
                emit_field(out, sql::kResultField, field.name, types, op_sql, bound);
                break;
            case Field::Source::param_then_result:
                // Per run: the param if the run has one by that name, else
                // the result.
                emit_field(out, sql::kParamField, field.name, types, op_sql, bound);
                out += " OR (NOT ";
                out += sql::kParamPresent;
                bindings_.push_back(field.name);
                out += " AND ";
                emit_field(out, sql::kResultField, field.name, types, op_sql, bound);
                out += ")";
                break;
        }
        out += ")";
    }

    void emit_field(std::string& out, const char* exists, const std::string& name,
                    const char* types, const char* op_sql, const Binding& value) {
        out += exists;
        out += types;
        out += " AND f.value";
        out += op_sql;
        out += "?)";
        bindings_.push_back(name);
        bindings_.push_back(value);
    }

    static void check_column_type(const RunColumn& col, const Token& name, const Token& value,
                                  bool like) {
        const std::string where = "'" + name.text + "'" + at(name.column);
        if (col.numeric && (like || value.kind != Tok::number))
            throw QueryError(where + " is a number: compare it with a number, not " +
                             describe(value));
        if (!col.numeric && value.kind != Tok::string)
            throw QueryError(where + " is text: compare it with a quoted string, not " +
                             describe(value));
    }

    Field resolve(const Token& name) {
        Field f;
        for (std::string_view prefix : {"params.", "results."}) {
            if (name.text.size() >= prefix.size() &&
                std::string_view(name.text).substr(0, prefix.size()) == prefix) {
                f.source = prefix == "params." ? Field::Source::param : Field::Source::result;
                f.name = name.text.substr(prefix.size());
                if (f.name.empty())
                    throw QueryError("expected a name after '" + std::string(prefix) + "'" +
                                     at(name.column));
                return f;
            }
        }
        for (const auto& col : kRunColumns) {
            if (col.name == name.text) {
                f.source = Field::Source::column;
                f.column = &col;
                return f;
            }
        }
        f.name = name.text;
        const bool param = name_exists(sql::kParamNameExists, f.name);
        const bool result = name_exists(sql::kResultNameExists, f.name);
        if (param && result)
            f.source = Field::Source::param_then_result;
        else if (param)
            f.source = Field::Source::param;
        else if (result)
            f.source = Field::Source::result;
        else
            throw QueryError("unknown name '" + name.text + "'" + at(name.column) +
                             ": not a run column (id, campaign, status, host, pid, started, "
                             "ended), nor a param or result of any run");
        return f;
    }

    bool name_exists(const char* query, const std::string& name) {
        Statement s(db_, query, "looking up the name '" + name + "'");
        s.bind(1, name);
        return s.step();
    }

    sqlite3* db_;
    std::vector<Token> tokens_;
    std::size_t pos_ = 0;
    std::vector<Binding> bindings_;
};

void bind_value(Statement& s, int index, const Binding& b) {
    std::visit([&](const auto& v) { s.bind(index, v); }, b);
}

}  // namespace

std::vector<RunRow> find_runs(const Catalog& catalog, const RunFilter& filter) {
    sqlite3* db = catalog.handle();
    assert(db != nullptr && "find_runs on a moved-from Catalog");
    sqlite::ReadTransaction snapshot(db);

    std::string query = sql::kFindRunsSelect;
    std::vector<Binding> bindings;
    if (!filter.campaign.empty()) {
        query += sql::kFindRunsCampaign;
        bindings.emplace_back(filter.campaign);
    }
    if (!filter.status.empty()) {
        query += sql::kFindRunsStatus;
        bindings.emplace_back(filter.status);
    }
    const bool has_where = filter.where.find_first_not_of(" \t\r\n\f\v") != std::string::npos;
    if (has_where) {
        query += " AND (";
        Translator(db, filter.where).translate(query, bindings);
        query += ")";
    }
    query += sql::kFindRunsOrder;
    if (filter.limit) {
        query += sql::kFindRunsLimit;
        const auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
        bindings.emplace_back(static_cast<std::int64_t>(std::min(*filter.limit, max)));
    }

    Statement runs(db, query, "finding runs");
    for (std::size_t i = 0; i < bindings.size(); ++i)
        bind_value(runs, static_cast<int>(i + 1), bindings[i]);
    Statement params(db, sql::kRunParams, "reading params of a run");
    Statement results(db, sql::kRunResults, "reading results of a run");

    std::vector<RunRow> out;
    while (runs.step()) {
        RunRow row;
        row.run_id = runs.column_int64(0);
        row.campaign = runs.column_text(1);
        row.status = runs.column_text(2);
        row.host = runs.column_text(3);
        row.pid = runs.column_int64(4);
        row.started = runs.column_double(5);
        row.ended = runs.column_is_null(6) ? 0 : runs.column_double(6);
        row.reason = runs.column_text(7);
        params.bind(1, row.run_id);
        row.params = sqlite::read_typed_fields(params);
        results.bind(1, row.run_id);
        row.results = sqlite::read_typed_fields(results);
        out.push_back(std::move(row));
    }
    return out;
}

}  // namespace simsink::catalog
