"""Demo and benchmark products: a realistic Chinese supermarket range, and fast synthetic SKUs.

:func:`demo_products` picks from hand-written tables of real-looking goods (brand, product,
size, price, 助记码) across the store's departments, round-robin so that any count covers
them all. Everything about one table entry (SKU, barcode, price, member price) depends only on
the seed and the entry, never on ``count``: the same seed gives the same "农夫山泉 饮用天然水
550ml" in a 50-product demo and in a 400-product one.

:func:`synthetic_products` yields any number of distinct, valid products for benchmarks.

Tax: the brief for the demo is 9% VAT for food and 13% for everything else. (Real Chinese VAT is
finer: 9% for farm produce, grain and edible oil, 13% for most processed food and drinks.)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from shouyin.domain.barcodes import gtin_check_digit
from shouyin.domain.money import Money, round_half_up
from shouyin.domain.product import Product, Unit

__all__ = ["DEMO_CATEGORIES", "demo_product_count", "demo_products", "synthetic_products"]

FOOD_VAT_BP: Final = 900
NON_FOOD_VAT_BP: Final = 1300
_MEMBER_SHARE: Final = 0.15
_MEMBER_DISCOUNTS_BP: Final = (8000, 8500, 8800, 9000, 9500)


@dataclass(frozen=True, slots=True)
class _Category:
    name: str
    code: str  # SKU prefix: pinyin initials of the category
    food: bool
    weighed: bool
    # Packaged rows: brand|mnemonic|item|mnemonic|size=fen,size=fen...; weighed rows:
    # item|mnemonic|fen per kg. A mnemonic is the pinyin initials of the Chinese words, with
    # Latin names kept (AD钙奶 -> adgn) and sizes, model numbers and strengths left out.
    table: str


_DRINKS = """
农夫山泉|nfsq|饮用天然水|yytrs|380ml=150,550ml=200,1.5L=450,4L=850,550ml×12=2290
农夫山泉|nfsq|东方树叶 茉莉花茶|dfsymlhc|500ml=500,900ml=790
农夫山泉|nfsq|东方树叶 乌龙茶|dfsywlc|500ml=500
怡宝|yb|纯净水|cjs|350ml=150,555ml=200,1.555L=450,4.5L=900
百岁山|bss|天然矿泉水|trkqs|348ml=250,570ml=300,1L=550
可口可乐|kkkl|||330ml=250,500ml=300,1.25L=550,2L=750,330ml×6=1390
可口可乐|kkkl|零度|ld|330ml=250,500ml=300
百事可乐|bskl|||330ml=250,500ml=300,2L=700,330ml×6=1290
雪碧|xb|||330ml=250,500ml=300,2L=750
芬达|fd|橙味汽水|cwqs|500ml=300,2L=750
元气森林|yqsl|白桃味苏打气泡水|btwsdqps|480ml=550,480ml×15=6990
元气森林|yqsl|外星人电解质水|wxrdjzs|500ml=600
康师傅|ksf|冰红茶|bhc|500ml=300,1L=450,2L=750
康师傅|ksf|茉莉清茶|mlqc|500ml=300
统一|ty|冰红茶|bhc|500ml=300,1L=450
统一|ty|阿萨姆奶茶|asmnc|500ml=450,1.5L=990
娃哈哈|whh|AD钙奶|adgn|220g×4=1000,100g×24=2990
王老吉|wlj|凉茶|lc|310ml=350,310ml×6=1990,1.5L=790
加多宝|jdb|凉茶|lc|310ml=350,310ml×6=1990
红牛|hn|维生素功能饮料|wssgnyl|250ml=650,250ml×6=3690
东鹏|dp|特饮|ty|250ml=350,500ml=500
脉动|md|青柠味|qnw|400ml=400,600ml=500
三得利|sdl|乌龙茶|wlc|500ml=500,1.25L=990
维他|wt|柠檬茶|nmc|250ml=350,250ml×6=1890
汇源|hy|100%橙汁|cz|1L=1290,2L=2290
椰树|ys|椰汁|yz|245ml=450,1L=1290
雀巢|qc|咖啡 丝滑拿铁|kfshnt|268ml=650
星巴克|xbk|星冰乐 摩卡|xblmk|281ml=1050
农夫山泉|nfsq|NFC橙汁|nfccz|300ml=990,900ml=2490
农夫山泉|nfsq|茶π 柠檬红茶|cpnmhc|500ml=500,1.25L=890
农夫山泉|nfsq|维他命水 柑橘味|wtmsgjw|500ml=500
康师傅|ksf|冰糖雪梨|btxl|500ml=300,1L=450
娃哈哈|whh|纯净水|cjs|596ml=150,4.5L=700
今麦郎|jml|凉白开|lbk|550ml=150,1.5L=350
美年达|mnd|橙味汽水|cwqs|500ml=300,2L=700
七喜|qx|柠檬味汽水|nmwqs|500ml=300,2L=700
健力宝|jlb|橙蜜味运动饮料|cmwydyl|330ml=300,560ml=450
宝矿力水特|bklst|电解质饮料|djzyl|500ml=600,900ml=990
北冰洋|bby|桔汁汽水|jzqs|248ml=450
冰露|bl|饮用水|yys|550ml=100,4L=600
"""

_DAIRY = """
伊利|yl|纯牛奶|cnn|250ml=350,250ml×16=5990,1L=1290
伊利|yl|安慕希 原味酸奶|amxywsn|205g=600,205g×12=6990
伊利|yl|金典 有机纯牛奶|jdyjcnn|250ml×12=6990
伊利|yl|舒化无乳糖牛奶|shwrtnn|220ml×12=5590
蒙牛|mn|纯牛奶|cnn|250ml=330,250ml×16=5490,1L=1190
蒙牛|mn|特仑苏 纯牛奶|tlscnn|250ml×12=6590,250ml×16=7990
蒙牛|mn|真果粒 草莓味|zglcmw|250g×12=4990
光明|gm|鲜牛奶|xnn|950ml=1590,1.8L=2690
光明|gm|莫斯利安 酸奶|mslasn|200g=600,200g×12=6590
光明|gm|优倍 鲜牛奶|ybxnn|950ml=1890
君乐宝|jlb|简醇 酸奶|jcsn|150g=490,250g=790
君乐宝|jlb|悦鲜活 鲜牛奶|yxhxnn|950ml=1990
三元|sy|极致 全脂鲜牛奶|jzqzxnn|900ml=1490
养乐多|yld|乳酸菌饮品|rsjyp|100ml×5=1250
卡士|ks|鲜酪乳|xlr|100g=500,100g×3=1390
简爱|ja|裸酸奶|lsn|135g=690,135g×6=3690
安佳|aj|全脂牛奶|qznn|250ml=690,1L=1990
妙可蓝多|mkld|儿童奶酪棒|etnlb|90g=1990,450g=7990
伊利|yl|QQ星 儿童成长牛奶|qqxetcznn|125ml×4=1390
伊利|yl|畅轻 燕麦酸奶|cqymsn|250g=890
蒙牛|mn|冠益乳 原味|gyryw|250g=790
光明|gm|畅优 酸奶|cysn|100g×8=1590
新希望|xxw|24小时 鲜牛奶|xsxnn|950ml=1590
卫岗|wg|鲜牛奶|xnn|200ml=490,950ml=1590
乐纯|lc|希腊酸奶|xlsn|135g=990
旺仔|wz|牛奶|nn|245ml=590,145ml×4=1890
优诺|yn|优丝 风味发酵乳|ysfwfjr|135g×3=1590
"""

_SNACKS = """
乐事|ls|原味薯片|ywsp|40g=450,75g=790,135g=1290
乐事|ls|黄瓜味薯片|hgwsp|40g=450,75g=790
乐事|ls|意大利香浓红烩味薯片|ydlxnhhwsp|75g=790
可比克|kbk|番茄味薯片|fqwsp|60g=550,105g=890
旺旺|ww|雪饼|xb|84g=690,520g=3290
旺旺|ww|仙贝|xb|52g=590,400g=3090
旺旺|ww|QQ糖|qqt|20g=250,70g=590
奥利奥|aly|原味夹心饼干|ywjxbg|97g=690,388g=2190
三只松鼠|szss|每日坚果|mrjg|750g=12900,175g=3490
三只松鼠|szss|夏威夷果|xwyg|160g=2490
三只松鼠|szss|碧根果|bgg|210g=2690
良品铺子|lppz|猪肉脯|zrf|100g=2290,200g=4290
良品铺子|lppz|芒果干|mgg|108g=1590
洽洽|qq|香瓜子|xgz|260g=990,500g=1790
洽洽|qq|小黄袋 每日坚果|xhdmrjg|26g=490,26g×7=3190
徐福记|xfj|酥心糖|sxt|250g=1990
德芙|df|丝滑牛奶巧克力|shnnqkl|43g=990,252g=4590
士力架|slj|花生夹心巧克力|hsjxqkl|51g=650,20g×10=2490
卫龙|wl|大面筋辣条|dmjlt|65g=350,106g=550
卫龙|wl|魔芋爽|myn|180g=1290
好丽友|hly|巧克力派|qklp|68g=690,204g=1290
康师傅|ksf|苏打夹心饼干|sdjxbg|125g=550
大白兔|dbt|奶糖|nt|114g=1190,227g=2090
炫迈|xm|无糖口香糖|wtkxt|28g=990
绿箭|lj|原味薄荷糖|ywbht|23.8g=890
上好佳|shj|鲜虾片|xxp|40g=350,80g=590
盼盼|pp|梅尼耶干蛋糕|mnygdg|200g=1290
奥利奥|aly|草莓味夹心饼干|cmwjxbg|97g=690
百草味|bcw|猪肉脯|zrf|100g=1990
百草味|bcw|芒果干|mgg|120g=1590
来伊份|lyf|九制话梅|jzhm|85g=1290
口水娃|ksw|兰花豆|lhd|98g=550
甘源|gy|蟹黄味瓜子仁|xhwgzr|285g=1990
益达|yd|无糖口香糖 薄荷味|wtkxtbhw|56g=990
阿尔卑斯|aebs|棒棒糖|bbt|10g×20=1690
好丽友|hly|薯愿|sy|104g=890
趣多多|qdd|巧克力曲奇|qklqq|95g=690
咪咪|mm|虾条|xt|20g×20=1290
"""

_PANTRY = """
金龙鱼|jly|大豆油|ddy|1.8L=2990,5L=6990
金龙鱼|jly|花生油|hsy|1.8L=4990,5L=12990
金龙鱼|jly|调和油|thy|1.8L=2790,5L=6590
鲁花|lh|压榨一级花生油|yzyjhsy|1.6L=5990,5L=15990
福临门|flm|东北大米|dbdm|5kg=3990,10kg=7590
福临门|flm|菜籽油|czy|5L=7990
十月稻田|sydt|五常大米|wcdm|2.5kg=3990,5kg=6990
金沙河|jsh|龙须挂面|lxgm|1kg=790,500g=450
陈克明|ckm|鸡蛋挂面|jdgm|1kg=1090
海天|ht|金标生抽|jbsc|500ml=890,1.9L=2390
海天|ht|老抽王|lcw|500ml=990
海天|ht|上等蚝油|sdhy|520g=990,700g=1290
海天|ht|黄豆酱|hdj|800g=1290
李锦记|ljj|薄盐生抽|bysc|500ml=1290
李锦记|ljj|旧庄蚝油|jzhy|510g=1590
恒顺|hs|镇江香醋|zjxc|500ml=990
老干妈|lgm|风味豆豉油制辣椒|fwdcyzlj|280g=1090
太太乐|ttl|鸡精|jj|200g=1290,454g=2690
中盐|zy|加碘精制盐|jdjzy|400g=300
王守义|wsy|十三香|ssx|45g=590
太古|tg|优级白砂糖|yjbst|454g=690,1kg=1290
鹃城牌|jcp|郫县豆瓣|pxdb|500g=990,1kg=1790
香满园|xmy|美味富强小麦粉|mwfqxmf|5kg=3290
金龙鱼|jly|东北大米|dbdm|5kg=3690
海天|ht|古道料酒|gdlj|450ml=690
海天|ht|白米醋|bmc|450ml=590
老恒和|lhh|料酒|lj|500ml=990
千禾|qh|零添加 酱油|ltjjy|500ml=1590
厨邦|cb|美味鲜酱油|mwxjy|1.25L=2290
莲花|lh|味精|wj|400g=990
燕之坊|yzf|小米|xm|1kg=1590
五得利|wdl|特精高筋小麦粉|tjgjxmf|5kg=2990
桂格|gg|即食燕麦片|jsymp|1kg=2990
南方黑芝麻|nfhzm|黑芝麻糊|hzmh|600g=2290
"""

_INSTANT = """
康师傅|ksf|红烧牛肉面|hsnrm|105g=350,105g×5=1590
康师傅|ksf|鲜虾鱼板面|xxybm|105g=350,105g×5=1590
康师傅|ksf|香辣牛肉桶面|xlnrtm|110g=550
统一|ty|老坛酸菜牛肉面|ltscnrm|121g=400,121g×5=1790
统一|ty|汤达人 日式豚骨拉面|tdrrstglm|125g=790
今麦郎|jml|一袋半 红烧牛肉面|ydbhsnrm|145g=300,145g×5=1390
白象|bx|汤好喝 老母鸡汤面|thhlmjtm|110g=450,110g×5=1990
合味道|hwd|海鲜风味杯面|hxfwbm|84g=650
日清|rq|出前一丁 麻油味|cqydmyw|100g=500
自嗨锅|zhg|麻辣牛肉自热火锅|mlnrzrhg|400g=3290
海底捞|hdl|番茄牛腩自热米饭|fqnnzrmf|375g=2490
双汇|sh|王中王火腿肠|wzwhtc|240g=1190,400g=1890
金锣|jl|香甜王火腿肠|xtwhtc|270g=990
梅林|ml|午餐肉罐头|wcrgt|340g=1590
李子柒|lzq|柳州螺蛳粉|lzlsf|335g=1590,335g×3=4290
好欢螺|hhl|螺蛳粉|lsf|400g=1390
阿宽|ak|红油面皮|hymp|105g=590
白家陈记|bjcj|酸辣粉|slf|115g=690
五谷道场|wgdc|非油炸方便面|fyzfbm|100g=450
三养|sy|火鸡面|hjm|140g=990,140g×5=4290
莫小仙|mxx|自热煲仔饭|zrbzf|275g=1990
鹰金钱|yjq|豆豉鲮鱼罐头|dclygt|227g=1690
古龙|gl|午餐肉|wcr|198g=1090
"""

_ALCOHOL = """
青岛啤酒|qdpj|经典|jd|500ml=600,330ml=400,500ml×12=6590
青岛啤酒|qdpj|纯生|cs|500ml=800
雪花|xh|勇闯天涯|yctt|500ml=550,500ml×12=5990
雪花|xh|清爽|qs|330ml=300
百威|bw|啤酒|pj|500ml=750,330ml=550
哈尔滨|heb|冰纯|bc|500ml=500
燕京|yj|鲜啤|xp|500ml=550
贵州茅台|gzmt|飞天 53%vol|ft|500ml=149900
五粮液|wly|普五 52%vol|pw|500ml=109900
洋河|yh|海之蓝 52%vol|hzl|520ml=14800
红星|hx|二锅头 56%vol|egt|500ml=1890,150ml=690
牛栏山|nls|陈酿 42%vol|cn|500ml=1490
泸州老窖|lzlj|特曲 52%vol|tq|500ml=32800
张裕|zy|解百纳干红葡萄酒|jbnghptj|750ml=12800
长城|cc|干红葡萄酒|ghptj|750ml=5990
江小白|jxb|表达瓶 40%vol|bdp|100ml=2290
古越龙山|gyls|花雕酒 五年陈|hdjwnc|500ml=3590
RIO|rio|微醺 鸡尾酒|wxjwj|330ml=690
青岛啤酒|qdpj|白啤|bp|500ml=1090
雪花|xh|纯生|cs|500ml=700
乐堡|lb|啤酒|pj|500ml=500
嘉士伯|jsb|特醇啤酒|tcpj|500ml=690
汾酒|fj|黄盖玻汾 53%vol|hgbf|475ml=5990
剑南春|jnc|水晶剑 52%vol|sjj|500ml=42900
古井贡酒|gjgj|年份原浆|nfyj|500ml=13800
会稽山|kjs|绍兴黄酒|sxhj|500ml=1290
梅见|mj|青梅酒|qmj|330ml=4990,750ml=8900
"""

_FROZEN = """
思念|sn|三鲜水饺|sxsj|500g=1290,1kg=2290
思念|sn|黑芝麻汤圆|hzmty|500g=1190
湾仔码头|wzmt|玉米猪肉水饺|ymzrsj|720g=3590
湾仔码头|wzmt|荠菜猪肉云吞|jczryt|500g=2990
三全|sq|猪肉白菜水饺|zrbcsj|500g=1190,1kg=2190
三全|sq|黑芝麻汤圆|hzmty|500g=1290
安井|aj|鱼豆腐|ydf|240g=1290
安井|aj|撒尿牛丸|snnw|250g=1590
安井|aj|速冻虾饺|sdxj|400g=2690
正大|zd|脆皮炸鸡|cpzj|500g=2990
伊利|yl|巧乐兹 雪糕|qlzxg|75g=400
蒙牛|mn|随变 雪糕|sbxg|75g=450
和路雪|hlx|可爱多 甜筒|kadtt|67g=600
八喜|bx|香草冰淇淋|xcbql|550g=4990,90g=990
避风塘|bft|虾饺皇|xjh|240g=2990
思念|sn|金牌虾仁水饺|jpxrsj|400g=3290
三全|sq|灌汤水饺|gtsj|450g=1590
湾仔码头|wzmt|上海风味小馄饨|shfwxht|360g=1990
广州酒家|gzjj|利口福 叉烧包|lkfcsb|400g=1990
安井|aj|手抓饼|szb|900g=2290
蒙牛|mn|绿色心情 绿豆雪糕|lsxqldxg|68g=300
海霸王|hbw|鱼丸|yw|500g=2290
正大|zd|蒸饺|zj|600g=2590
"""

_HOUSEHOLD = """
维达|wd|超韧抽纸|crcz|100抽×3包=1290,100抽×6包=2490
清风|qf|原木纯品卷纸|ymcpjz|10卷=2990,27卷=5990
心相印|xxy|茶语抽纸|cycz|120抽×3包=1590
洁柔|jr|湿巾|sj|80片=1290
妙洁|mj|保鲜袋|bxd|中号100只=990
妙洁|mj|保鲜膜|bxm|30米=1290
美丽雅|mly|一次性纸杯|ycxzb|50只=990
双枪|sq|竹筷子|zkz|10双=1290
天堂|tt|三折晴雨伞|szqys|1把=4990
南孚|nf|5号碱性电池|jxdc|4粒=1990,8粒=3590
南孚|nf|7号碱性电池|jxdc|4粒=1990
公牛|gn|插线板 1.8米|cxb|1个=4990
茶花|ch|保鲜盒|bxh|3件套=2990
得力|dl|中性笔 0.5mm|zxb|12支=1290
维达|wd|厨房用纸|cfyz|2卷=1290
清风|qf|质感纯品抽纸|zgcpcz|130抽×6包=2990
洁柔|jr|面子 抽纸|mzcz|100抽×6包=2590
妙洁|mj|一次性手套|ycxst|100只=990
美丽雅|mly|垃圾袋|ljd|100只=1290
南孚|nf|纽扣电池 CR2032|nkdc|2粒=1590
晨光|cg|中性笔 0.5mm|zxb|12支=1190
晨光|cg|A4复印纸|fyz|500张=2990
双枪|sq|砧板|zb|1块=5990
苏泊尔|sbe|不粘炒锅|bzcg|30cm=19900
乐扣乐扣|lklk|保温杯|bwb|500ml=9900
"""

_PERSONAL = """
高露洁|glj|全面防蛀牙膏|qmfzyg|90g=790,140g=1290
云南白药|ynby|牙膏 留兰香型|yg|180g=3290
佳洁士|jjs|3D炫白牙膏|xbyg|120g=1990
海飞丝|hfs|去屑洗发露|qxxfl|200ml=2990,400ml=4990
潘婷|pt|氨基酸洗发露|ajsxfl|500ml=5990
飘柔|pr|家庭护理洗发露|jthlxfl|750ml=4590
舒肤佳|sfj|纯白清香沐浴露|cbqxmyl|720ml=3990
舒肤佳|sfj|香皂|xz|115g×3=1290
六神|ls|花露水|hls|195ml=1290
大宝|db|SOD蜜|sodm|200ml=1590
妮维雅|nwy|男士控油洁面乳|nskyjmr|100g=4290
曼秀雷敦|mxld|润唇膏|rcg|3.5g=2490
护舒宝|hsb|日用卫生巾|rywsj|10片=1990
苏菲|sf|弹力贴身 夜用卫生巾|tltsyywsj|8片=2490
吉列|jl|锋速剃须刀|fstxd|1刀架1刀头=5990
好来|hl|超白牙膏|cbyg|190g=1590
舒适达|ssd|抗敏感牙膏|kmgyg|120g=4590
高露洁|glj|软毛牙刷|rmys|2支=1590
清扬|qy|男士去屑洗发露|nsqxxfl|500g=6990
力士|ls|沐浴露|myl|1L=4990
多芬|df|滋养柔肤沐浴乳|zyrfmyr|730g=4990
百雀羚|bql|保湿霜|bss|50g=5990
隆力奇|llq|蛇油护手霜|syhss|80g=690
七度空间|qdkj|少女系列 夜用卫生巾|snxlyywsj|10片=1690
强生|qs|婴儿润肤露|yerfl|100ml=2590
"""

_CLEANING = """
立白|lb|超洁清新洗衣粉|cjqxxyf|1.65kg=1990
立白|lb|新金桔洗洁精|xjjxjj|1.45kg=1490
蓝月亮|lyl|深层洁净洗衣液|scjjxyy|1kg=2490,3kg=5990
奥妙|am|全自动洗衣粉|qzdxyf|2.5kg=4290
汰渍|tz|洁净薰香洗衣液|jjxxxyy|3kg=5590
白猫|bm|洗洁精|xjj|1.5kg=1290
威猛先生|wmxs|厨房重油污净|cfzywj|500g=2490
威猛先生|wmxs|洁厕液|jcy|500g×2=2990
滴露|dl|消毒液|xdy|1.2L=4990
雕牌|dp|超效加酶洗衣粉|cxjmxyf|1.8kg=2290
超能|cn|天然皂粉|trzf|1.8kg=3290
立白|lb|除菌洗衣液|cjxyy|2kg=3990
蓝月亮|lyl|手洗专用洗衣液|sxzyxyy|500g=1590
奥妙|am|酵素洗衣液|jsxyy|2kg=4990
滴露|dl|衣物除菌液|ywcjy|1.5L=6990
威露士|wls|洗手液|xsy|525ml=2290
洁霸|jb|无磷洗衣粉|wlxyf|1kg=1590
妙管家|mgj|地板清洁剂|dbqjj|2L=2990
花王|hw|马桶清洁剂|mtqjj|500ml=1990
绿伞|ls|洗洁精|xjj|1.5kg=1390
超能|cn|植翠低泡洗衣液|zcdpxyy|2kg=3590
"""

_BAKERY = """
桃李|tl|醇熟切片面包|csqpmb|400g=1190
桃李|tl|天然酵母面包|trjmmb|80g=350,600g=1990
宾堡|bb|吐司面包|tsmb|400g=1290
曼可顿|mkd|全麦面包|qmmb|400g=1390
达利园|dly|法式软面包|fsrmb|200g=890,400g=1590
盼盼|pp|法式小面包|fsxmb|200g=790
好丽友|hly|蛋黄派|dhp|138g=1090
港荣|gr|蒸蛋糕|zdg|468g=2290
味多美|wdm|北海道吐司|bhdts|400g=1590
稻香村|dxc|枣花酥|zhs|330g=2590
泸溪河|lxh|桃酥|ts|200g=1890
桃李|tl|豆沙面包|dsmb|75g=300
宾堡|bb|全麦吐司|qmts|400g=1590
达利园|dly|蛋黄派|dhp|250g=1590
达利园|dly|瑞士卷|rsj|240g=1290
好利来|hll|半熟芝士|bszs|6枚=4800
三只松鼠|szss|手撕面包|ssmb|1kg=2990
米旗|mq|蛋黄酥|dhs|330g=3990
嘉华|jh|鲜花饼|xhb|50g×6=3600
"""

_PRODUCE = """
红富士苹果|hfspg|1196
香蕉|xj|698
砂糖橘|stj|998
赣南脐橙|gnqc|1196
丰水梨|fsl|896
巨峰葡萄|jfpt|1596
阳光玫瑰葡萄|ygmgpt|3996
麒麟西瓜|qlxg|396
哈密瓜|hmg|796
火龙果|hlg|1396
猕猴桃|mht|1596
芒果|mg|1196
草莓|cm|3996
西红柿|xhs|596
黄瓜|hg|498
土豆|td|298
胡萝卜|hlb|358
大白菜|dbc|198
生菜|sc|798
菠菜|bc|898
西兰花|xlh|998
茄子|qz|598
青椒|qj|698
洋葱|yc|358
大蒜|ds|1196
生姜|sj|1396
香菇|xg|1596
金针菇|jzg|898
山药|sy|1196
莲藕|lo|998
冬瓜|dg|198
南瓜|ng|298
车厘子|clz|7996
圣女果|sng|1196
青菜|qc|598
芹菜|qc|598
韭菜|jc|798
豆芽|dy|398
莴笋|ws|598
白萝卜|blb|298
红薯|hs|498
玉米|ym|598
杏鲍菇|xbg|1196
柠檬|nm|1196
柚子|yz|598
菠萝|bl|798
"""

_MEAT_EGGS = """
猪五花肉|zwhr|3596
猪前腿肉|zqtr|2796
猪里脊|zlj|3196
猪排骨|zpg|4596
猪蹄|zt|3396
牛腩|nn|7996
牛腱子|njz|8996
羊腿肉|ytr|7596
鸡胸肉|jxr|1996
鸡翅中|jcz|4596
鸡腿|jt|2396
三黄鸡|shj|2796
鸭腿|yt|2196
鲜鸡蛋|xjd|1196
土鸡蛋|tjd|1996
鹌鹑蛋|acd|1996
鲈鱼|ly|5996
草鱼|cy|2396
基围虾|jwx|8996
带鱼|dy|4996
猪肉馅|zrx|2996
鸡爪|jz|3596
羊排|yp|8996
鲫鱼|jy|2796
"""

_CATEGORIES: Final = (
    _Category("饮料", "YL", food=True, weighed=False, table=_DRINKS),
    _Category("乳品", "RP", food=True, weighed=False, table=_DAIRY),
    _Category("零食", "LS", food=True, weighed=False, table=_SNACKS),
    _Category("粮油调味", "LY", food=True, weighed=False, table=_PANTRY),
    _Category("方便速食", "FB", food=True, weighed=False, table=_INSTANT),
    _Category("酒水", "JS", food=True, weighed=False, table=_ALCOHOL),
    _Category("冷冻食品", "LD", food=True, weighed=False, table=_FROZEN),
    _Category("日用百货", "RY", food=False, weighed=False, table=_HOUSEHOLD),
    _Category("个人护理", "GH", food=False, weighed=False, table=_PERSONAL),
    _Category("清洁用品", "QJ", food=False, weighed=False, table=_CLEANING),
    _Category("生鲜蔬果", "SG", food=True, weighed=True, table=_PRODUCE),
    _Category("肉禽蛋", "RQ", food=True, weighed=True, table=_MEAT_EGGS),
    _Category("面包烘焙", "MB", food=True, weighed=False, table=_BAKERY),
)
DEMO_CATEGORIES: Final = tuple(c.name for c in _CATEGORIES)

# Weighed departments number their PLUs from here, so the scale programming reads naturally.
_PLU_BASE: Final = {"生鲜蔬果": 1001, "肉禽蛋": 2001}


@dataclass(frozen=True, slots=True)
class _Entry:
    """One sellable row of a table, before the seed gives it a barcode and member price."""

    category: _Category
    index: int  # position within the category: the SKU number
    name: str
    mnemonic: str
    price_fen: int
    brand: str  # "" for weighed goods (no manufacturer barcode)


def _rows(table: str) -> list[list[str]]:
    return [line.split("|") for line in table.strip().splitlines()]


def _entries(category: _Category) -> list[_Entry]:
    entries: list[_Entry] = []
    if category.weighed:
        for name, mnemonic, fen in _rows(category.table):
            entries.append(_Entry(category, len(entries), name, mnemonic, int(fen), ""))
        return entries
    for brand, brand_mn, item, item_mn, sizes in _rows(category.table):
        for size in sizes.split(","):
            label, fen = size.split("=")
            name = " ".join(part for part in (brand, item, label) if part)
            entry = _Entry(category, len(entries), name, brand_mn + item_mn, int(fen), brand)
            entries.append(entry)
    return entries


_ENTRIES: Final = tuple(tuple(_entries(c)) for c in _CATEGORIES)


def demo_product_count() -> int:
    """Return how many distinct products the demo tables hold (the largest valid ``count``)."""
    return sum(len(entries) for entries in _ENTRIES)


def _company_prefixes(rng: random.Random) -> dict[str, str]:
    """Give every brand its own 7-digit GS1 company prefix in China's range (690-695 here)."""
    brands = list(dict.fromkeys(e.brand for entries in _ENTRIES for e in entries if e.brand))
    numbers = rng.sample(range(60_000), len(brands))
    return {brand: f"69{n:05d}" for brand, n in zip(brands, numbers, strict=True)}


def _member_price(rng: random.Random, price_fen: int) -> Money | None:
    if rng.random() >= _MEMBER_SHARE:
        return None
    discounted = round_half_up(price_fen * rng.choice(_MEMBER_DISCOUNTS_BP), 10_000)
    # Shelf prices end in whole jiao; a member price that rounds up to the price is no offer.
    member = round_half_up(discounted, 10) * 10
    return Money(member) if 0 < member < price_fen else None


def demo_products(count: int = 400, seed: int = 2026) -> list[Product]:
    """Return a deterministic demo range of Chinese supermarket goods.

    Departments take turns, so any count spreads over all of them. Packaged goods carry a
    unique EAN-13 with a Chinese GS1 prefix (690-695) per brand; fresh produce and meat are
    weighed (priced per kg, with a PLU for the scales, no barcode). About 15% have a member price.

    Args:
        count: how many products, at most :func:`demo_product_count`.
        seed: the random seed; the same seed always gives the same products.

    Returns:
        The products, ordered by department and then SKU.

    Raises:
        ValueError: if ``count`` is negative or larger than the tables.
    """
    available = demo_product_count()
    if not 0 <= count <= available:
        raise ValueError(f"count must be between 0 and {available}, got {count}")
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    prefixes = _company_prefixes(rng)
    item_refs = {brand: rng.randrange(50_000) for brand in prefixes}

    # Decide every entry's details before choosing, so that they do not depend on count.
    products: dict[tuple[int, int], Product] = {}
    for cat_no, entries in enumerate(_ENTRIES):
        for entry in entries:
            products[cat_no, entry.index] = _product(entry, prefixes, item_refs, rng)

    queues = [list(range(len(entries))) for entries in _ENTRIES]
    for queue in queues:
        rng.shuffle(queue)
    chosen: list[tuple[int, int]] = []
    while len(chosen) < count:
        for cat_no, queue in enumerate(queues):
            if queue and len(chosen) < count:
                chosen.append((cat_no, queue.pop()))
    return [products[key] for key in sorted(chosen)]


def _product(
    entry: _Entry, prefixes: dict[str, str], item_refs: dict[str, int], rng: random.Random
) -> Product:
    category = entry.category
    barcodes: tuple[str, ...] = ()
    plu = None
    if category.weighed:
        plu = str(_PLU_BASE[category.name] + entry.index)
    else:
        item_refs[entry.brand] += 1
        body = f"{prefixes[entry.brand]}{item_refs[entry.brand]:05d}"
        barcodes = (body + str(gtin_check_digit(body)),)
    return Product(
        sku=f"{category.code}{entry.index + 1:04d}",
        name=entry.name,
        price=Money(entry.price_fen),
        unit=Unit.KG if category.weighed else Unit.EACH,
        barcodes=barcodes,
        plu=plu,
        category=category.name,
        tax_rate_bp=FOOD_VAT_BP if category.food else NON_FOOD_VAT_BP,
        member_price=_member_price(rng, entry.price_fen),
        mnemonic=entry.mnemonic,
    )


# -- synthetic products for benchmarks --------------------------------------------------------

_SYNTHETIC_BRANDS: Final = (
    ("华润", "hr"),
    ("鲜丰", "xf"),
    ("永辉", "yh"),
    ("联华", "lh"),
    ("物美", "wm"),
    ("盒马", "hm"),
    ("百佳", "bj"),
    ("大润发", "drf"),
)
# (item, mnemonic, category, food)
_SYNTHETIC_ITEMS: Final = (
    ("矿泉水", "kqs", "饮料", True),
    ("纯牛奶", "cnn", "乳品", True),
    ("薯片", "sp", "零食", True),
    ("大米", "dm", "粮油调味", True),
    ("方便面", "fbm", "方便速食", True),
    ("啤酒", "pj", "酒水", True),
    ("水饺", "sj", "冷冻食品", True),
    ("抽纸", "cz", "日用百货", False),
    ("牙膏", "yg", "个人护理", False),
    ("洗衣液", "xyy", "清洁用品", False),
    ("吐司", "ts", "面包烘焙", True),
)
_SYNTHETIC_PLU_EVERY: Final = 20
_MAX_PLU: Final = 99_999  # five W digits in the common scale formats
_MAX_SYNTHETIC: Final = 10**9  # nine digits after the 699 prefix
_SYNTHETIC_PRICE_SPAN: Final = 9900


def synthetic_products(count: int, start: int = 0) -> Iterator[Product]:
    """Yield distinct, valid synthetic products quickly (a million in a few seconds).

    Product ``i`` (counting from 0 across calls, so ``start`` continues a sequence) has SKU
    ``S`` + ``i`` in 9 digits, the EAN-13 ``699`` + ``i`` in 9 digits + check digit, and a
    unique name and mnemonic ending in ``i``. Every 20th product is weighed with PLU
    ``i // 20 + 1`` while that fits five digits; every 7th has a member price.

    Args:
        count: how many products.
        start: the index of the first one.

    Returns:
        An iterator over the products.

    Raises:
        ValueError: if the range is negative or beyond the nine digits of the barcode.
    """
    if count < 0 or start < 0 or start + count > _MAX_SYNTHETIC:
        raise ValueError(f"synthetic products are numbered 0..{_MAX_SYNTHETIC - 1}")
    return _synthetic(count, start)


def _digit_weights(w0: int, w1: int, w2: int) -> tuple[int, ...]:
    """GS1 weighted sums of every three-digit chunk 000..999, for the given digit weights."""
    return tuple(w0 * (n // 100) + w1 * (n // 10 % 10) + w2 * (n % 10) for n in range(1000))


def _synthetic(count: int, start: int) -> Iterator[Product]:
    # A million products must take seconds, so the loop avoids per-product work it can share:
    # check digits come from chunk tables (body "699" + hi + mid + lo, three digits each; GS1
    # weights 3,1,3 / 1,3,1 / 3,1,3 and 42 for "699"), and prices reuse one Money per value.
    weights_313, weights_131 = _digit_weights(3, 1, 3), _digit_weights(1, 3, 1)
    prices = [Money(fen) for fen in range(_SYNTHETIC_PRICE_SPAN + 100)]
    brands, items = _SYNTHETIC_BRANDS, _SYNTHETIC_ITEMS
    each, kg = Unit.EACH, Unit.KG
    for i in range(start, start + count):
        brand, brand_mn = brands[i % len(brands)]
        item, item_mn, category, food = items[i % len(items)]
        hi, mid, lo = i // 1_000_000, i // 1000 % 1000, i % 1000
        check = -(42 + weights_313[hi] + weights_131[mid] + weights_313[lo]) % 10
        fen = 100 + (i * 7919) % _SYNTHETIC_PRICE_SPAN  # a spread of prices, ¥1.00 to ¥99.99
        weighed = i % _SYNTHETIC_PLU_EVERY == 0 and i // _SYNTHETIC_PLU_EVERY < _MAX_PLU
        yield Product(
            sku=f"S{i:09d}",
            name=f"{brand} {item} {i}",
            price=prices[fen],
            unit=kg if weighed else each,
            barcodes=(f"699{i:09d}{check}",),
            plu=str(i // _SYNTHETIC_PLU_EVERY + 1) if weighed else None,
            category=category,
            tax_rate_bp=FOOD_VAT_BP if food else NON_FOOD_VAT_BP,
            member_price=prices[fen - fen // 10] if i % 7 == 0 else None,
            mnemonic=f"{brand_mn}{item_mn}{i}",
        )
