"""How often the readers decode a text in a known encoding right: 24 languages in 47 encodings.

Known texts (six sentences per language, written here) are encoded in every encoding made for their
language (`MADE_FOR`; English in all of them, every language in UTF-8/16/32), sentences the encoding cannot
hold left out, and decoded by the project's decoder (`search.decoding.decode_text`, as every reader calls it); a sample
counts as right when the decoded text equals the original exactly. Samples per language and encoding:
each sentence alone (short), three pairs of sentences, the paragraph of all six, and a long text (the
paragraph four times, rotated; about 1-3 KB). A few encodings also go through the CSV, JSON and HTML
readers (`read_paths`), and a group of files mix encodings line by line.

Prints the percentage right per encoding, per group and overall. With ``--baseline REF`` the same
samples are also decoded by the code of git revision REF (its ``search/`` package, extracted to a
temporary folder), and the two columns are printed side by side:

    python benchmarks/bench_encodings.py --baseline main
    python benchmarks/bench_encodings.py --show 5     # also print 5 wrong decodings per encoding
    python benchmarks/bench_encodings.py --xquad /work/shared/xquad   # plus held-out XQuAD text
    python benchmarks/bench_encodings.py --baseline main --speed 3     # plus decode time, side by side

``--xquad DIR`` adds text the decoder was not tuned on: the first paragraphs and questions of XQuAD
(ar, de, en, es, ru, zh; read from DIR, never copied) in the encodings made for their language.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TEXTS: dict[str, list[str]] = {
    "en": [
        "The river rose quickly after three days of heavy rain in the valley.",
        "Most of the old bridges were closed, so farmers drove their cattle across the hills.",
        "A small museum in the town keeps maps that are more than two hundred years old.",
        "“It’s the best café in town,” she said – and she was right.",
        "The library opens at nine and closes late on Thursdays.",
        "Nobody expected the festival to draw so many visitors this year.",
    ],
    "fr": [
        "Le château se dresse au sommet d'une colline couverte de vignes.",
        "Chaque été, des milliers de touristes viennent goûter les vins de la région.",
        "La forêt voisine abrite des cerfs, des sangliers et de nombreux oiseaux.",
        "Après la pluie, les enfants jouent dans les flaques près de l’église.",
        "Ma sœur préfère le thé à la crème, mais mon frère boit toujours du café noir.",
        "Le musée présente une collection d'œuvres peintes au dix-neuvième siècle.",
    ],
    "de": [
        "Die Straßenbahn fährt alle zehn Minuten vom Bahnhof bis zur Universität.",
        "Im Frühling blühen die Apfelbäume in den Gärten hinter dem Dorf.",
        "Müller hat gestern drei Bücher über die Geschichte Österreichs gekauft.",
        "Wir übernachten in einer kleinen Hütte am Ufer des Sees.",
        "Der Bäcker öffnet schon um fünf Uhr morgens seine Tür.",
        "Ärzte empfehlen, täglich mindestens eine halbe Stunde zu Fuß zu gehen.",
    ],
    "es": [
        "El año pasado viajamos en tren desde Madrid hasta la costa del norte.",
        "La niña pidió un vaso de leche y una porción de pastel de limón.",
        "¿Sabes a qué hora cierra la farmacia los domingos?",
        "Los pescadores salen al mar antes del amanecer, incluso en invierno.",
        "Mi abuela cultivaba tomates, pimientos y calabacines en su huerto.",
        "La canción más famosa del grupo habla de un corazón roto.",
    ],
    "pt": [
        "A cidade ganhou uma nova biblioteca pública no último verão.",
        "Os pescadores voltaram cedo porque o mar estava muito agitado.",
        "Não há nada melhor do que um pão quente com manteiga de manhã.",
        "A exposição reúne fotografias tiradas durante a construção da ponte.",
        "As crianças aprenderam a plantar feijão e milho na horta da escola.",
        "Ele sempre esquece onde deixou as chaves do carro.",
    ],
    "it": [
        "La città è famosa per i suoi ponti e per le piccole piazze nascoste.",
        "Ogni domenica mio nonno prepara la pasta fatta in casa.",
        "Il treno per Firenze è partito con venti minuti di ritardo.",
        "Perché non andiamo al mare prima che arrivi l'autunno?",
        "Le montagne intorno al lago sono coperte di neve fino a maggio.",
        "Più tardi visiteremo la chiesa di San Michele e il suo campanile.",
    ],
    "pl": [
        "Wczoraj wieczorem długo rozmawialiśmy o książkach, które czytaliśmy w szkole.",
        "Żółty tramwaj jedzie przez most na drugą stronę rzeki.",
        "Moja siostra gotuje zupę grzybową według przepisu babci.",
        "W lesie rośnie mnóstwo jagód i poziomek.",
        "Pociąg do Krakowa odjeżdża za piętnaście minut z peronu trzeciego.",
        "Świeże pieczywo kupujemy codziennie w małej piekarni na rogu.",
    ],
    "cs": [
        "Včera večer jsme šli do divadla na novou hru o životě v malém městě.",
        "Na zahradě rostou jablka, hrušky a švestky.",
        "Můj dědeček si každé ráno čte noviny u kávy.",
        "Řeka se po dlouhých deštích rozlila do polí.",
        "Děti si ve škole kreslily zvířata, která viděly v zoologické zahradě.",
        "Příští týden pojedeme vlakem do Brna navštívit přátele.",
    ],
    "hu": [
        "A folyó partján hosszú sétányt építettek a városlakóknak.",
        "Nagymamám minden vasárnap túrós rétest süt az unokáinak.",
        "Az őszi erdőben gombát szedtünk és sokat nevettünk.",
        "A vonat negyedórás késéssel érkezett meg Debrecenbe.",
        "Ügyelj arra, hogy a kulcsot mindig a fiókban hagyd!",
        "A múzeumban régi térképeket és érméket is kiállítottak.",
    ],
    "ru": [
        "Вчера вечером мы долго гуляли по набережной и смотрели на корабли.",
        "В нашей библиотеке есть редкие книги девятнадцатого века.",
        "Бабушка испекла пирог с яблоками и пригласила соседей на чай.",
        "Поезд до Москвы отправляется ровно в семь часов утра.",
        "Зимой в этом лесу можно встретить лося или даже волка.",
        "Студенты готовятся к экзаменам и почти не спят по ночам.",
    ],
    "uk": [
        "Учора ввечері ми довго гуляли парком і слухали, як співають птахи.",
        "Моя сестра вчиться в університеті та їздить додому щоп'ятниці.",
        "У селі біля річки стоїть стара дерев'яна церква.",
        "Їжак сховався під кущем, коли почув наші кроки.",
        "Восени ми збираємо яблука та груші в бабусиному саду.",
        "Потяг до Львова запізнюється на пів години.",
    ],
    "bg": [
        "Миналата седмица ходихме на планина и видяхме много диви цветя.",
        "Баща ми обича да чете вестник, докато пие сутрешното си кафе.",
        "Децата играят футбол в двора на училището след часовете.",
        "Влакът за Варна тръгва от първи коловоз.",
        "През лятото морето е топло и плажовете са пълни с хора.",
        "Тази книга разказва историята на едно малко село в Родопите.",
    ],
    "el": [
        "Το καλοκαίρι πηγαίνουμε συχνά στο νησί για να κολυμπήσουμε.",
        "Η γιαγιά μου φτιάχνει την καλύτερη σπανακόπιτα της γειτονιάς.",
        "Το πλοίο για τον Πειραιά αναχωρεί στις οκτώ το πρωί.",
        "Στο μουσείο είδαμε αρχαία αγγεία και χρυσά κοσμήματα.",
        "Τα παιδιά έπαιζαν στην πλατεία μέχρι αργά το βράδυ.",
        "Αύριο θα βρέξει σε όλη τη χώρα, σύμφωνα με την πρόγνωση.",
    ],
    "tr": [
        "Dün akşam arkadaşlarımla sahilde uzun bir yürüyüş yaptık.",
        "Annem her pazar sabahı taze simit ve peynir alır.",
        "İstanbul'dan Ankara'ya giden tren biraz gecikti.",
        "Çocuklar bahçede top oynarken kedi ağacın üstünde uyuyordu.",
        "Bu kitabı okumayı çok seviyorum çünkü hikâyesi gerçekten ilginç.",
        "Öğretmenimiz yarın sınav olacağını söyledi.",
    ],
    "he": [
        "אתמול בערב טיילנו לאורך החוף וראינו את השקיעה.",
        "סבתא שלי אופה עוגת תפוחים בכל יום שישי.",
        "הרכבת לירושלים יוצאת בשעה שמונה בבוקר.",
        "הילדים משחקים בפארק עד שמחשיך.",
        "בספרייה העירונית יש אוסף גדול של ספרים ישנים.",
        "מחר צפוי גשם בצפון הארץ.",
    ],
    "ar": [
        "ذهبنا أمس إلى السوق واشترينا الخضار والفواكه الطازجة.",
        "تحب جدتي أن تحكي لنا القصص القديمة في المساء.",
        "يغادر القطار إلى القاهرة في الساعة الثامنة صباحا.",
        "يلعب الأطفال كرة القدم في الحديقة بعد المدرسة.",
        "تضم المكتبة العامة آلاف الكتب والمخطوطات النادرة.",
        "سيكون الطقس حارا غدا في معظم المناطق.",
    ],
    "fa": [
        "دیروز با دوستانم به کوه رفتیم و هوای تازه نفس کشیدیم.",
        "مادربزرگم هر جمعه برای ما آش می\u200cپزد.",
        "کتابخانه شهر تا ساعت هشت شب باز است.",
        "بچه\u200cها در پارک بازی می\u200cکنند.",
        "قطار تهران با کمی تأخیر رسید.",
        "فردا هوا سرد و برفی خواهد بود.",
    ],
    "lt": [
        "Vakar vakare ilgai vaikščiojome palei upę ir žiūrėjome į saulėlydį.",
        "Mano močiutė kiekvieną sekmadienį kepa obuolių pyragą.",
        "Traukinys į Vilnių išvyksta aštuntą valandą ryto.",
        "Vaikai žaidžia kieme, kol sutemsta.",
        "Miesto bibliotekoje yra daug senų knygų ir žemėlapių.",
        "Rytoj šiaurėje tikimasi lietaus ir stipraus vėjo.",
    ],
    "lv": [
        "Vakar mēs ilgi staigājām gar jūru un vērojām saulrietu.",
        "Mana vecmāmiņa katru svētdienu cep ābolu pīrāgu.",
        "Vilciens uz Rīgu atiet pulksten astoņos no rīta.",
        "Bērni spēlējas pagalmā, līdz satumst.",
        "Pilsētas bibliotēkā ir daudz vecu grāmatu un karšu.",
        "Rīt ziemeļos gaidāms lietus un stiprs vējš.",
    ],
    "th": [
        "เมื่อวานนี้เราไปเดินเล่นที่ชายหาดและดูพระอาทิตย์ตก",
        "คุณยายของฉันทำขนมไทยทุกวันอาทิตย์",
        "รถไฟไปเชียงใหม่ออกเดินทางตอนแปดโมงเช้า",
        "เด็กๆ เล่นฟุตบอลในสวนหลังเลิกเรียน",
        "ห้องสมุดของเมืองมีหนังสือเก่าจำนวนมาก",
        "พรุ่งนี้ฝนจะตกหนักในภาคเหนือ",
    ],
    "vi": [
        "Hôm qua chúng tôi đi dạo dọc bờ biển và ngắm hoàng hôn.",
        "Bà tôi nấu phở vào mỗi sáng Chủ nhật.",
        "Tàu hỏa đi Hà Nội khởi hành lúc tám giờ sáng.",
        "Trẻ em chơi đá bóng trong công viên sau giờ học.",
        "Thư viện thành phố có rất nhiều sách cũ.",
        "Ngày mai trời sẽ mưa to ở miền Bắc.",
    ],
    "zh-Hans": [
        "昨天晚上我们沿着河边散步，看到了美丽的日落。",
        "我奶奶每个星期天都会包饺子给全家人吃。",
        "开往上海的火车早上八点从北京南站出发。",
        "孩子们放学后在公园里踢足球。",
        "市图书馆收藏了许多珍贵的古籍和地图。",
        "明天北方地区将有大雨，请注意出行安全。",
    ],
    "zh-Hant": [
        "昨天晚上我們沿著河邊散步，看到了美麗的日落。",
        "我奶奶每個星期天都會包餃子給全家人吃。",
        "開往高雄的火車早上八點從台北車站出發。",
        "孩子們放學後在公園裡踢足球。",
        "市立圖書館收藏了許多珍貴的古籍和地圖。",
        "明天北部地區將有大雨，請注意出行安全。",
    ],
    "ja": [
        "昨日の夜、私たちは川沿いを散歩して、きれいな夕日を見ました。",
        "祖母は毎週日曜日に家族のために料理を作ってくれます。",
        "大阪行きの新幹線は朝八時に東京駅を出発します。",
        "子どもたちは放課後、公園でサッカーをしています。",
        "市立図書館には古い本や地図がたくさんあります。",
        "明日は北日本で大雨が降る見込みです。",
    ],
    "ko": [
        "어제 저녁에 우리는 강가를 따라 산책하며 아름다운 노을을 보았습니다.",
        "할머니께서는 매주 일요일마다 가족을 위해 음식을 만드십니다.",
        "부산행 기차는 아침 여덟 시에 서울역에서 출발합니다.",
        "아이들은 방과 후에 공원에서 축구를 합니다.",
        "시립 도서관에는 오래된 책과 지도가 많이 있습니다.",
        "내일은 북부 지방에 큰비가 내릴 예정입니다.",
    ],
}

# (encoding, group): "bom" carries a byte-order mark, "unambiguous" is told apart by its structure
# (UTF-8, UTF-16/32 without a BOM, escape-sequence encodings), "legacy" needs a guess.
ENCODINGS: tuple[tuple[str, str], ...] = (
    ("utf-8", "unambiguous"), ("utf-8-sig", "bom"), ("utf-16", "bom"), ("utf-32", "bom"),
    ("utf-16-le", "unambiguous"), ("utf-16-be", "unambiguous"), ("utf-32-le", "unambiguous"),
    ("utf-32-be", "unambiguous"), ("iso-2022-jp", "unambiguous"), ("iso-2022-kr", "unambiguous"),
    ("hz", "unambiguous"),
    ("cp1252", "legacy"), ("latin-1", "legacy"), ("iso-8859-15", "legacy"), ("mac_roman", "legacy"),
    ("cp850", "legacy"), ("cp1250", "legacy"), ("iso-8859-2", "legacy"), ("cp1251", "legacy"),
    ("koi8-r", "legacy"), ("koi8-u", "legacy"), ("iso-8859-5", "legacy"), ("cp866", "legacy"),
    ("mac_cyrillic", "legacy"), ("cp1253", "legacy"), ("iso-8859-7", "legacy"), ("cp1254", "legacy"),
    ("iso-8859-9", "legacy"), ("cp1255", "legacy"), ("iso-8859-8", "legacy"), ("cp1256", "legacy"),
    ("iso-8859-6", "legacy"), ("cp1257", "legacy"), ("iso-8859-13", "legacy"), ("cp874", "legacy"),
    ("tis-620", "legacy"), ("gb2312", "legacy"), ("gbk", "legacy"), ("gb18030", "legacy"), ("big5", "legacy"),
    ("big5hkscs", "legacy"), ("cp950", "legacy"), ("shift_jis", "legacy"), ("cp932", "legacy"),
    ("euc-jp", "legacy"), ("euc-kr", "legacy"), ("cp949", "legacy"),
)
_WESTERN = ("en", "fr", "de", "es", "pt", "it")
_CENTRAL = ("en", "pl", "cs", "hu")
# The languages each legacy encoding was made for, plus English; UTF-8, -16 and -32 take every language.
MADE_FOR: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("cp1252", "latin-1", "iso-8859-15", "mac_roman", "cp850"), _WESTERN),
    **dict.fromkeys(("cp1250", "iso-8859-2"), _CENTRAL),
    "cp1251": ("en", "ru", "uk", "bg"), "koi8-r": ("en", "ru", "bg"), "koi8-u": ("en", "uk", "ru", "bg"),
    "iso-8859-5": ("en", "ru", "bg"), "cp866": ("en", "ru", "bg"), "mac_cyrillic": ("en", "ru", "uk", "bg"),
    **dict.fromkeys(("cp1253", "iso-8859-7"), ("en", "el")), **dict.fromkeys(("cp1254", "iso-8859-9"), ("en", "tr")),
    **dict.fromkeys(("cp1255", "iso-8859-8"), ("en", "he")), "cp1256": ("en", "ar", "fa"), "iso-8859-6": ("en", "ar"),
    **dict.fromkeys(("cp1257", "iso-8859-13"), ("en", "lt", "lv")), **dict.fromkeys(("cp874", "tis-620"), ("en", "th")),
    **dict.fromkeys(("gb2312", "gbk", "gb18030", "hz"), ("en", "zh-Hans")),
    **dict.fromkeys(("big5", "big5hkscs", "cp950"), ("en", "zh-Hant")),
    **dict.fromkeys(("shift_jis", "cp932", "euc-jp", "iso-2022-jp"), ("en", "ja")),
    **dict.fromkeys(("euc-kr", "cp949", "iso-2022-kr"), ("en", "ko")),
}
# Files whose lines alternate between two (language, encoding)s, as when exports are concatenated.
MIXED: tuple[tuple[tuple[str, str], tuple[str, str]], ...] = (
    (("fr", "utf-8"), ("fr", "cp1252")), (("de", "utf-8"), ("de", "cp1252")), (("ru", "utf-8"), ("ru", "cp1251")),
    (("ja", "utf-8"), ("ja", "shift_jis")), (("el", "utf-8"), ("el", "cp1253")), (("de", "cp1252"), ("ru", "cp1251")),
    (("pl", "cp1250"), ("ru", "cp1251")), (("fr", "cp1252"), ("el", "cp1253")),
)
# (reader suffix, encoding): the same samples through read_paths.
READER_CASES: tuple[tuple[str, str], ...] = (
    (".csv", "cp1251"), (".csv", "gbk"), (".csv", "shift_jis"), (".csv", "utf-16-be"), (".json", "gb18030"),
    (".json", "cp1255"), (".jsonl", "euc-kr"), (".html", "cp1252"), (".html", "shift_jis"), (".html", "cp1251"),
    (".txt", "utf-32-le"),
)
# HTML pages whose <meta charset> names the encoding (WHATWG labels), or names one the bytes are not in.
HTML_DECLARED: tuple[tuple[str, str, str], ...] = (
    ("cp1252", "windows-1252", "fr"), ("cp1252", "iso-8859-1", "de"), ("cp1251", "windows-1251", "ru"),
    ("gb18030", "gb2312", "zh-Hans"), ("shift_jis", "shift_jis", "ja"), ("euc-kr", "euc-kr", "ko"),
    ("cp1252", "utf-16", "fr"), ("cp1255", "windows-1255", "he"), ("big5", "big5", "zh-Hant"),
)


def samples(language: str) -> list[tuple[str, str]]:
    """(size, text): each sentence, three pairs, the paragraph and a long text of four rotations."""
    sentences = TEXTS[language]
    joiner = "" if language in ("zh-Hans", "zh-Hant", "ja", "th") else " "
    found = [("short", sentence) for sentence in sentences]
    found += [("pair", joiner.join(sentences[index : index + 2])) for index in range(0, 6, 2)]
    found.append(("paragraph", "\n".join(sentences)))
    rotations = ["\n".join(sentences[shift:] + sentences[:shift]) for shift in (0, 2, 3, 5)]
    found.append(("long", "\n\n".join(rotations)))
    return found


def decode_cases() -> list[dict]:
    cases = []
    for encoding, group in ENCODINGS:
        for language in MADE_FOR.get(encoding, tuple(TEXTS)):
            for size, text in samples(language):
                try:
                    data = text.encode(encoding)
                except UnicodeEncodeError:
                    continue
                cases.append({"kind": "decode", "encoding": encoding, "group": group, "language": language,
                              "size": size, "text": text, "data": data.hex()})
    return cases


def mixed_cases() -> list[dict]:
    cases = []
    for (first_language, first_encoding), (second_language, second_encoding) in MIXED:
        first, second = TEXTS[first_language], TEXTS[second_language]
        for size, count in (("paragraph", 6), ("long", 24)):
            lines = [(first[n % 6] if n % 2 == 0 else second[n % 6], first_encoding if n % 2 == 0 else second_encoding)
                     for n in range(count)]
            text = "\n".join(line for line, _ in lines)
            data = b"\n".join(line.encode(encoding) for line, encoding in lines)
            label = f"lines {first_encoding}/{second_encoding}"
            cases.append({"kind": "decode", "encoding": label, "group": "mixed", "size": size,
                          "language": f"{first_language}+{second_language}", "text": text, "data": data.hex()})
    return cases


def reader_cases() -> list[dict]:
    cases = []
    for suffix, encoding in READER_CASES:
        for language in MADE_FOR.get(encoding, tuple(TEXTS)):
            for size, text in samples(language):
                line = " ".join(text.split())  # one record per line: a CSV field or JSON string of one line
                try:
                    line.encode(encoding)
                except UnicodeEncodeError:
                    continue
                if suffix == ".csv":
                    content = f'id,text\nd1,"{line}"\n'
                elif suffix == ".json":
                    content = json.dumps([{"id": "d1", "text": line}], ensure_ascii=False)
                elif suffix == ".jsonl":
                    content = json.dumps({"_id": "d1", "text": line}, ensure_ascii=False) + "\n"
                elif suffix == ".html":
                    content = f"<html><head><title>t</title></head><body><p>{line}</p></body></html>"
                else:
                    content, line = text, text
                cases.append({"kind": "read", "encoding": f"{suffix[1:]} {encoding}", "group": "readers",
                              "language": language, "size": size, "suffix": suffix, "text": line,
                              "data": content.encode(encoding).hex()})
    for encoding, label, language in HTML_DECLARED:
        for size, text in samples(language):
            line = " ".join(text.split())
            page = (f'<html><head><meta charset="{label}"><title>t</title></head>'
                    f"<body><p>{line}</p></body></html>")
            cases.append({"kind": "read", "encoding": f"html {encoding} declared {label}", "group": "html declared",
                          "language": language, "size": size, "suffix": ".html", "text": line,
                          "data": page.encode(encoding).hex()})
    return cases


_XQUAD_ENCODINGS = {
    "ar": ("cp1256", "iso-8859-6", "utf-16-le", "utf-16-be"), "de": ("cp1252", "iso-8859-15", "mac_roman", "cp850"),
    "en": ("cp1252", "utf-16-be"), "es": ("cp1252", "iso-8859-15", "mac_roman", "cp850", "utf-32-le"),
    "ru": ("cp1251", "koi8-r", "iso-8859-5", "cp866", "mac_cyrillic", "utf-16-be"),
    "zh": ("gb18030", "gbk", "hz", "utf-16-le", "utf-16-be"),
}


def xquad_cases(folder: Path, per_language: int = 40) -> list[dict]:
    """Held-out samples: XQuAD paragraphs and questions (short) in each encoding made for their language."""
    cases = []
    for language, encodings in _XQUAD_ENCODINGS.items():
        path = folder / f"xquad.{language}.json"
        if not path.is_file():
            continue
        paragraphs = [paragraph for article in json.loads(path.read_text(encoding="utf-8"))["data"]
                      for paragraph in article["paragraphs"]][:per_language]
        # XQuAD's texts often start with a stray U+FEFF, which a UTF-16 or -32 file would hold as its BOM.
        texts = [("paragraph", paragraph["context"].lstrip("\ufeff")) for paragraph in paragraphs]
        texts += [("question", paragraph["qas"][0]["question"].lstrip("\ufeff")) for paragraph in paragraphs]
        for encoding in encodings:
            for size, text in texts:
                try:
                    data = text.encode(encoding)
                except UnicodeEncodeError:
                    continue
                cases.append({"kind": "decode", "encoding": f"xquad {encoding}", "group": "held-out (XQuAD)",
                              "language": language, "size": size, "text": text.replace("\r\n", "\n"),
                              "data": data.hex()})
    return cases


def run_cases(cases: list[dict]) -> list[dict]:
    """Decode every case with the `search` package on sys.path; return [{right, got}] in order."""
    from search.decoding import decode_text
    from search.reading import read_paths

    logging.disable(logging.WARNING)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for number, case in enumerate(cases):
            data = bytes.fromhex(case["data"])
            if case["kind"] == "decode":
                got = decode_text(data, "sample.txt").text
            else:
                path = Path(folder, f"{number}{case['suffix']}")
                path.write_bytes(data)
                documents = read_paths([path], names=[f"sample{case['suffix']}"]).documents
                got = documents[0].text if len(documents) == 1 else None
            results.append({"right": got == case["text"], "got": None if got is None else got[:120]})
    return results


SPEED_FILES = {
    "UTF-8, 1 KB": ("ru", "utf-8", 1), "cp1251, 1 KB": ("ru", "cp1251", 1), "GBK, 1 KB": ("zh-Hans", "gbk", 1),
    "cp1252, 100 B": ("fr", "cp1252", 0), "cp1251, 10 MB": ("ru", "cp1251", 10_000),
    "GBK, 10 MB": ("zh-Hans", "gbk", 10_000), "UTF-8, 10 MB": ("ru", "utf-8", 10_000),
}


def speed_cases() -> dict[str, str]:
    """File name -> hex bytes: the paragraph of a language repeated to about the size given in KB."""
    found = {}
    for label, (language, encoding, kilobytes) in SPEED_FILES.items():
        paragraph = "\n".join(TEXTS[language]) + "\n"
        data = paragraph.encode(encoding)
        data = data * max(1, kilobytes * 1000 // len(data)) if kilobytes else TEXTS[language][4].encode(encoding)
        found[label] = data.hex()
    return found


def time_cases(cases: dict[str, str], rounds: int) -> dict[str, float]:
    """Median seconds of `decode_text` per case, after one warm-up call (fastText and code tables loaded)."""
    import statistics
    import time

    from search.decoding import decode_text

    logging.disable(logging.WARNING)
    decode_text("Ma sœur préfère le thé.".encode("cp1252"), "warm-up")
    medians = {}
    for label, hexed in cases.items():
        data = bytes.fromhex(hexed)
        times = []
        for _ in range(rounds if len(data) < 1_000_000 else max(1, rounds // 5)):
            started = time.perf_counter()
            decode_text(data, "timed.txt")
            times.append(time.perf_counter() - started)
        medians[label] = statistics.median(times)
    return medians


def _speed(code: Path, cases_file: Path, rounds: int) -> dict[str, float]:
    script = (f"import json, sys; sys.path.insert(0, {str(code)!r}); sys.path.insert(1, {str(ROOT)!r}); "
              "from benchmarks.bench_encodings import time_cases; "
              f"print(json.dumps(time_cases(json.load(open({str(cases_file)!r})), {rounds})))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=code)
    if done.returncode != 0:
        raise SystemExit(f"the decoder in {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _report_speed(results: dict[str, list[dict[str, float]]]) -> None:
    import statistics

    names = list(results)
    print(f"\ndecode_text time, median of {len(results[names[0]])} interleaved runs (each the median of its rounds):")
    for label in SPEED_FILES:
        medians = [statistics.median(run[label] for run in results[name]) for name in names]
        shown = "  ".join(f"{name}: {median * 1000:8.2f} ms" for name, median in zip(names, medians, strict=True))
        ratio = f"  ratio {medians[-1] / medians[0]:.1f}x" if len(medians) > 1 and medians[0] > 0 else ""
        print(f"  {label:<15} {shown}{ratio}")


def _measure(code: Path | None, cases_file: Path) -> list[dict]:
    """Run the cases in a child process whose `search` package comes from `code` (default: this checkout)."""
    root = code or ROOT
    script = (f"import json, sys; sys.path.insert(0, {str(root)!r}); sys.path.insert(1, {str(ROOT)!r}); "
              "from benchmarks.bench_encodings import run_cases; "
              f"print(json.dumps(run_cases(json.load(open({str(cases_file)!r})))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"the decoder in {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _extract(revision: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "search"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git revision whose decoder is measured beside this one (e.g. main)")
    parser.add_argument("--show", type=int, default=0, help="wrong decodings shown per encoding (default 0)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--xquad", type=Path, help="folder of xquad.<lang>.json files: adds held-out text")
    parser.add_argument("--speed", type=int, default=0, metavar="RUNS",
                        help="also time decode_text on 1 KB to 10 MB files, RUNS interleaved runs per code")
    args = parser.parse_args()
    cases = decode_cases() + mixed_cases() + reader_cases() + (xquad_cases(args.xquad) if args.xquad else [])
    with tempfile.TemporaryDirectory() as folder:
        cases_file = Path(folder, "cases.json")
        cases_file.write_text(json.dumps(cases), encoding="utf-8")
        columns = {}
        if args.baseline:
            code = _extract(args.baseline, Path(folder, "baseline"))
            columns[args.baseline] = _measure(code, cases_file)
        columns["this checkout"] = _measure(None, cases_file)
        _report(cases, columns, args.show, args.markdown)
        if args.speed:
            speed_file = Path(folder, "speed.json")
            speed_file.write_text(json.dumps(speed_cases()), encoding="utf-8")
            codes = {args.baseline: Path(folder, "baseline")} if args.baseline else {}
            codes["this checkout"] = ROOT
            timed: dict[str, list[dict[str, float]]] = {name: [] for name in codes}
            for _ in range(args.speed):
                for name, code in codes.items():
                    timed[name].append(_speed(code, speed_file, rounds=15))
            _report_speed(timed)
    return 0


def _report(cases: list[dict], columns: dict[str, list[dict]], show: int, markdown: bool) -> None:
    names = list(columns)
    rows: dict[str, list[int]] = {}
    groups: dict[str, str] = {}
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for index, case in enumerate(cases):
        label = case["encoding"]
        groups[label] = case["group"]
        rows.setdefault(label, [0] * (len(names) + 1))
        rows[label][0] += 1
        for position, name in enumerate(names):
            right = columns[name][index]["right"]
            rows[label][position + 1] += right
            buckets = [case["group"]]
            if not case["group"].startswith("held-out"):
                buckets.append("overall (all decode samples)" if case["kind"] == "decode" else "all reader samples")
            for bucket in buckets:
                key = (bucket, name)
                tally[key][0] += 1
                tally[key][1] += right
    header = ["encoding", "group", "samples", *[f"right: {name}" for name in names]]
    lines = []
    for label, counts in rows.items():
        lines.append([label, groups[label], str(counts[0]),
                      *[f"{100 * right / counts[0]:.1f}%" for right in counts[1:]]])
    buckets = dict.fromkeys(key[0] for key in tally)
    for bucket in buckets:
        total = tally[(bucket, names[0])][0]
        lines.append([f"**{bucket}**" if markdown else f"== {bucket}", "", str(total),
                      *[f"{100 * tally[(bucket, name)][1] / total:.1f}%" for name in names]])
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(" --- " for _ in header) + "|")
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(row[column]) for row in [header, *lines]) for column in range(len(header))]
        for row in [header, *lines]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    if show:
        last = columns[names[-1]]
        shown: dict[str, int] = defaultdict(int)
        for index, case in enumerate(cases):
            if not last[index]["right"] and shown[case["encoding"]] < show:
                shown[case["encoding"]] += 1
                print(f"WRONG {case['encoding']} {case['language']} {case['size']}: {case['text'][:60]!r} -> "
                      f"{last[index]['got']!r}")


if __name__ == "__main__":
    raise SystemExit(main())
