package usagelog

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The SpreadsheetML the XLSX encoder writes: cells with inline strings (no
// shared-string table, which would have to be held until the end), one
// fixed style sheet, and the parts that list the sheets. ECMA-376 Part 1
// §18 describes the elements; nothing here is optional for Excel except
// where a comment says so.

const (
	xmlHeader = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"
	nsMain    = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
	nsRel     = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
	nsPkgRel  = "http://schemas.openxmlformats.org/package/2006/relationships"
)

// stylesXML holds the cell formats the style* constants index: cellXfs
// entry i is style i. Ids 164 and up are custom number formats; 1 is the
// built-in "0".
const stylesXML = xmlHeader + `<styleSheet xmlns="` + nsMain + `">` +
	`<numFmts count="4">` +
	`<numFmt numFmtId="164" formatCode="` + timeFormat + `"/>` +
	`<numFmt numFmtId="165" formatCode="` + costFormat + `"/>` +
	`<numFmt numFmtId="166" formatCode="` + dayFormat + `"/>` +
	`<numFmt numFmtId="167" formatCode="` + hourFormat + `"/>` +
	`</numFmts>` +
	`<fonts count="2">` +
	`<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>` +
	`<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>` +
	`</fonts>` +
	`<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>` +
	`<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>` +
	`<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>` +
	`<cellXfs count="9">` +
	`<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>` +
	`<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>` +
	`<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>` +
	`<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>` +
	`<xf numFmtId="1" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>` +
	`<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>` +
	`<xf numFmtId="167" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>` +
	`<xf numFmtId="165" fontId="1" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyFont="1"/>` +
	`<xf numFmtId="1" fontId="1" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyFont="1"/>` +
	`</cellXfs>` +
	`<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>` +
	`</styleSheet>`

const rootRels = xmlHeader + `<Relationships xmlns="` + nsPkgRel + `">` +
	`<Relationship Id="rId1" Type="` + nsRel + `/officeDocument" Target="xl/workbook.xml"/>` +
	`</Relationships>`

func (e *XLSX) workbookXML() []byte {
	b := append([]byte(xmlHeader), `<workbook xmlns="`+nsMain+`" xmlns:r="`+nsRel+`">`+
		`<bookViews><workbookView activeTab="0"/></bookViews><sheets>`...)
	for i, name := range e.sheets {
		id := strconv.Itoa(i + 1)
		b = append(b, `<sheet name="`...)
		b = appendXMLText(b, name)
		b = append(b, `" sheetId="`+id+`" r:id="rId`+id+`"/>`...)
	}
	return append(b, `</sheets></workbook>`...)
}

func (e *XLSX) workbookRels() []byte {
	b := append([]byte(xmlHeader), `<Relationships xmlns="`+nsPkgRel+`">`...)
	for i := range e.sheets {
		id := strconv.Itoa(i + 1)
		b = append(b, `<Relationship Id="rId`+id+`" Type="`+nsRel+`/worksheet" Target="worksheets/sheet`+id+`.xml"/>`...)
	}
	id := strconv.Itoa(len(e.sheets) + 1)
	b = append(b, `<Relationship Id="rId`+id+`" Type="`+nsRel+`/styles" Target="styles.xml"/>`...)
	return append(b, `</Relationships>`...)
}

func (e *XLSX) contentTypes() []byte {
	b := append([]byte(xmlHeader), `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">`+
		`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>`+
		`<Default Extension="xml" ContentType="application/xml"/>`+
		`<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>`+
		`<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>`...)
	for i := range e.sheets {
		b = append(b, `<Override PartName="/xl/worksheets/sheet`+strconv.Itoa(i+1)+
			`.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`...)
	}
	return append(b, `</Types>`...)
}

// appendCellStart writes `<c r="B7" s="4"` (no s for style 0); col counts
// from 0 and stays below 26.
func appendCellStart(b []byte, col, row, style int) []byte {
	b = append(b, `<c r="`...)
	b = append(b, byte('A'+col))
	b = strconv.AppendInt(b, int64(row), 10)
	b = append(b, '"')
	if style != 0 {
		b = append(b, ` s="`...)
		b = strconv.AppendInt(b, int64(style), 10)
		b = append(b, '"')
	}
	return b
}

func appendIntCell(b []byte, col, row, style int, v int64) []byte {
	b = appendCellStart(b, col, row, style)
	b = append(b, `><v>`...)
	b = strconv.AppendInt(b, v, 10)
	return append(b, `</v></c>`...)
}

// appendCostCell writes the decimal text s as a number of at most 15
// significant digits (what a spreadsheet keeps, rounded from the exact
// decimal, never through a float), or as text when it is not a decimal
// (NaN), so the cell says what the database holds.
func appendCostCell(b []byte, col, row, style int, s string) []byte {
	start := len(b)
	b = appendCellStart(b, col, row, style)
	b = append(b, `><v>`...)
	b, ok := appendDecimal(b, s)
	if !ok {
		return appendStringCell(b[:start], col, row, 0, s)
	}
	return append(b, `</v></c>`...)
}

// Excel's 1900 date system: serial 1 is 1900-01-01, and serial 60 is the
// 29 February 1900 that never was, so later dates count one day more.
var (
	excelEpoch     = time.Date(1899, time.December, 31, 0, 0, 0, 0, time.UTC).Unix()
	excelLeapStart = time.Date(1900, time.March, 1, 0, 0, 0, 0, time.UTC)
)

// appendTimeCell writes t, a wall clock held as a UTC time, as a date-time
// serial: whole days plus the fraction of a day, computed in that order
// so that the value is the one excelize and Excel write for the same time.
// A time before 1900, which a serial cannot hold, is written as text.
func appendTimeCell(b []byte, col, row, style int, t time.Time) []byte {
	secs := t.Unix() - excelEpoch
	if secs < 0 {
		return appendStringCell(b, col, row, 0, t.Format("2006-01-02T15:04:05.000"))
	}
	days := secs / 86400
	nanos := (secs-days*86400)*1e9 + int64(t.Nanosecond())
	serial := float64(days) + float64(nanos)/float64(24*time.Hour)
	if !t.Before(excelLeapStart) {
		serial++
	}
	b = appendCellStart(b, col, row, style)
	b = append(b, `><v>`...)
	b = strconv.AppendFloat(b, serial, 'f', -1, 64)
	return append(b, `</v></c>`...)
}

// maxCellChars is the most a cell holds, in UTF-16 code units: Excel
// reports a file with a longer cell as damaged, so longer text is cut.
const maxCellChars = 32767

// appendStringCell writes s as an inline string; an empty s is no cell at
// all (an empty cell, not an empty string). Text in a cell is never read
// as a formula, so unlike the CSV it needs no formula guard.
func appendStringCell(b []byte, col, row, style int, s string) []byte {
	if s == "" {
		return b
	}
	if len(s) > maxCellChars {
		s = truncateUTF16(s, maxCellChars)
	}
	b = appendCellStart(b, col, row, style)
	b = append(b, ` t="inlineStr"><is><t`...)
	// XML readers drop leading and trailing white space unless told not to.
	switch first, last := s[0], s[len(s)-1]; {
	case first == ' ' || first == '\t' || first == '\n' || first == '\r',
		last == ' ' || last == '\t' || last == '\n' || last == '\r':
		b = append(b, ` xml:space="preserve"`...)
	}
	b = append(b, '>')
	b = appendXMLText(b, s)
	return append(b, `</t></is></c>`...)
}

// truncateUTF16 cuts s to at most n UTF-16 code units, between characters.
func truncateUTF16(s string, n int) string {
	units := 0
	for i, r := range s {
		u := 1
		if r >= 0x10000 {
			u = 2
		}
		if units+u > n {
			return s[:i]
		}
		units += u
	}
	return s
}

// appendXMLText escapes s as XML character data. CR is written as a
// character reference (a literal one would be read as LF); characters XML
// cannot hold (most C0 controls, invalid UTF-8) become U+FFFD, as
// encoding/xml does; and text that reads like SpreadsheetML's own escape
// _xHHHH_ has its underscore escaped, so a reader shows it as written.
func appendXMLText(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			var esc string
			switch {
			case c == '&':
				esc = "&amp;"
			case c == '<':
				esc = "&lt;"
			case c == '>':
				esc = "&gt;"
			case c == '\r':
				esc = "&#xD;"
			case c == '_' && isEscapeLike(s[i:]):
				esc = "_x005F_"
			case c < 0x20 && c != '\t' && c != '\n':
				esc = "\uFFFD"
			default:
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, esc...)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// isEscapeLike reports whether s starts with _xHHHH_ (H a hex digit).
func isEscapeLike(s string) bool {
	if len(s) < 7 || s[1] != 'x' || s[6] != '_' {
		return false
	}
	return strings.IndexFunc(s[2:6], func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F')
	}) < 0
}
