/// Zone names the JDK gives where the tz database has none in letters, as Joda-Time prints them with
/// `z` and `zzzz` (Joda-Time 2.10.14 on JDK 17, English): short names of zones whose tz abbreviations
/// are numeric (`-03` for America/Sao_Paulo, where Joda prints `BRT`), and long names where the JDK's
/// differ from ICU's (`Turkey Time` for Asia/Istanbul, where ICU says `GMT+03:00`). Facts, one line a
/// zone: id, standard name, daylight name (`-` for none).
enum JDKZoneNames {
  /// The short name of `zone` in standard or daylight time; the other kind's when the JDK knows
  /// only that one (Joda's data may class the offset otherwise: Casablanca is daylight there).
  static func short(_ zone: String, daylight: Bool) -> String? {
    name(in: shortNames, zone, daylight, either: true)
  }

  /// The long name of `zone` in standard or daylight time, where the JDK's differs from ICU's.
  static func long(_ zone: String, daylight: Bool) -> String? {
    name(in: longNames, zone, daylight, either: false)
  }

  private static func name(
    in table: [String: (String?, String?)], _ zone: String, _ daylight: Bool, either: Bool
  )
    -> String?
  {
    guard let (standard, summer) = table[zone] else { return nil }
    let chosen = daylight ? summer : standard
    return chosen ?? (either ? (daylight ? standard : summer) : nil)
  }

  private static func table(_ text: String) -> [String: (String?, String?)] {
    var result: [String: (String?, String?)] = [:]
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: "|").map { $0 == "-" ? nil : String($0) }
      if fields.count == 3, let zone = fields[0] { result[zone] = (fields[1], fields[2]) }
    }
    return result
  }

  private static let shortNames = table(
    """
    Africa/Casablanca|-|WEST
    Africa/El_Aaiun|-|WEST
    America/Araguaina|BRT|-
    America/Argentina/Buenos_Aires|ART|-
    America/Argentina/Catamarca|ART|-
    America/Argentina/ComodRivadavia|ART|-
    America/Argentina/Cordoba|ART|-
    America/Argentina/Jujuy|ART|-
    America/Argentina/La_Rioja|ART|-
    America/Argentina/Mendoza|ART|-
    America/Argentina/Rio_Gallegos|ART|-
    America/Argentina/Salta|ART|-
    America/Argentina/San_Juan|ART|-
    America/Argentina/San_Luis|ART|-
    America/Argentina/Tucuman|ART|-
    America/Argentina/Ushuaia|ART|-
    America/Asuncion|PYT|PYST
    America/Bahia|BRT|-
    America/Belem|BRT|-
    America/Boa_Vista|AMT|-
    America/Bogota|COT|-
    America/Buenos_Aires|ART|-
    America/Campo_Grande|AMT|AMST
    America/Caracas|VET|-
    America/Catamarca|ART|-
    America/Cayenne|GFT|-
    America/Cordoba|ART|-
    America/Cuiaba|AMT|AMST
    America/Eirunepe|ACT|-
    America/Fortaleza|BRT|-
    America/Godthab|WGT|WGST
    America/Guayaquil|ECT|-
    America/Guyana|GYT|-
    America/Jujuy|ART|-
    America/La_Paz|BOT|-
    America/Lima|PET|-
    America/Maceio|BRT|-
    America/Manaus|AMT|-
    America/Mendoza|ART|-
    America/Miquelon|PMST|PMDT
    America/Montevideo|UYT|-
    America/Noronha|FNT|-
    America/Nuuk|WGT|WGST
    America/Paramaribo|SRT|-
    America/Porto_Acre|ACT|-
    America/Porto_Velho|AMT|-
    America/Punta_Arenas|GMT-03:00|-
    America/Recife|BRT|-
    America/Rio_Branco|ACT|-
    America/Rosario|ART|-
    America/Santarem|BRT|-
    America/Santiago|CLT|CLST
    America/Sao_Paulo|BRT|BRST
    America/Scoresbysund|EGT|EGST
    Antarctica/Casey|AWST|-
    Antarctica/Davis|DAVT|-
    Antarctica/DumontDUrville|DDUT|-
    Antarctica/Mawson|MAWT|-
    Antarctica/Palmer|CLT|-
    Antarctica/Rothera|ROTT|-
    Antarctica/Syowa|SYOT|-
    Antarctica/Troll|GMT|CEST
    Antarctica/Vostok|VOST|-
    Asia/Aden|AST|-
    Asia/Almaty|ALMT|-
    Asia/Amman|EET|EEST
    Asia/Anadyr|ANAT|-
    Asia/Aqtau|AQTT|-
    Asia/Aqtobe|AQTT|-
    Asia/Ashgabat|TMT|-
    Asia/Ashkhabad|TMT|-
    Asia/Atyrau|GMT+05:00|-
    Asia/Baghdad|AST|-
    Asia/Bahrain|AST|-
    Asia/Baku|AZT|-
    Asia/Bangkok|ICT|-
    Asia/Barnaul|GMT+07:00|-
    Asia/Bishkek|KGT|-
    Asia/Brunei|BNT|-
    Asia/Chita|YAKT|-
    Asia/Choibalsan|CHOT|-
    Asia/Colombo|IST|-
    Asia/Dacca|BDT|-
    Asia/Damascus|EET|EEST
    Asia/Dhaka|BDT|-
    Asia/Dili|TLT|-
    Asia/Dubai|GST|-
    Asia/Dushanbe|TJT|-
    Asia/Ho_Chi_Minh|ICT|-
    Asia/Hovd|HOVT|-
    Asia/Irkutsk|IRKT|-
    Asia/Istanbul|TRT|-
    Asia/Kabul|AFT|-
    Asia/Kamchatka|PETT|-
    Asia/Kashgar|XJT|-
    Asia/Kathmandu|NPT|-
    Asia/Katmandu|NPT|-
    Asia/Khandyga|YAKT|-
    Asia/Krasnoyarsk|KRAT|-
    Asia/Kuala_Lumpur|MYT|-
    Asia/Kuching|MYT|-
    Asia/Kuwait|AST|-
    Asia/Magadan|MAGT|-
    Asia/Muscat|GST|-
    Asia/Novokuznetsk|KRAT|-
    Asia/Novosibirsk|NOVT|-
    Asia/Omsk|OMST|-
    Asia/Oral|ORAT|-
    Asia/Phnom_Penh|ICT|-
    Asia/Qatar|AST|-
    Asia/Qostanay|QOST|-
    Asia/Qyzylorda|QYZT|-
    Asia/Rangoon|MMT|-
    Asia/Riyadh|AST|-
    Asia/Saigon|ICT|-
    Asia/Sakhalin|SAKT|-
    Asia/Samarkand|UZT|-
    Asia/Singapore|SGT|-
    Asia/Srednekolymsk|SRET|-
    Asia/Tashkent|UZT|-
    Asia/Tbilisi|GET|-
    Asia/Tehran|IRST|IRDT
    Asia/Thimbu|BTT|-
    Asia/Thimphu|BTT|-
    Asia/Tomsk|GMT+07:00|-
    Asia/Ulaanbaatar|ULAT|-
    Asia/Ulan_Bator|ULAT|-
    Asia/Urumqi|XJT|-
    Asia/Ust-Nera|VLAT|-
    Asia/Vientiane|ICT|-
    Asia/Vladivostok|VLAT|-
    Asia/Yakutsk|YAKT|-
    Asia/Yangon|MMT|-
    Asia/Yekaterinburg|YEKT|-
    Asia/Yerevan|AMT|-
    Atlantic/Azores|AZOT|AZOST
    Atlantic/Cape_Verde|CVT|-
    Atlantic/South_Georgia|GST|-
    Atlantic/Stanley|FKT|-
    Australia/Eucla|ACWST|-
    Australia/LHI|LHST|LHDT
    Australia/Lord_Howe|LHST|LHDT
    Brazil/Acre|ACT|-
    Brazil/DeNoronha|FNT|-
    Brazil/East|BRT|BRST
    Brazil/West|AMT|-
    Chile/Continental|CLT|CLST
    Chile/EasterIsland|EAST|EASST
    Europe/Astrakhan|GMT+04:00|-
    Europe/Istanbul|TRT|-
    Europe/Minsk|MSK|-
    Europe/Samara|SAMT|-
    Europe/Saratov|GMT+04:00|-
    Europe/Ulyanovsk|GMT+04:00|-
    Indian/Chagos|IOT|-
    Indian/Christmas|CXT|-
    Indian/Cocos|CCT|-
    Indian/Kerguelen|TFT|-
    Indian/Mahe|SCT|-
    Indian/Maldives|MVT|-
    Indian/Mauritius|MUT|-
    Indian/Reunion|RET|-
    Pacific/Apia|WSST|WSDT
    Pacific/Bougainville|BST|-
    Pacific/Chatham|CHAST|CHADT
    Pacific/Chuuk|CHUT|-
    Pacific/Easter|EAST|EASST
    Pacific/Efate|VUT|-
    Pacific/Enderbury|GMT+13:00|-
    Pacific/Fakaofo|TKT|-
    Pacific/Fiji|FJT|-
    Pacific/Funafuti|TVT|-
    Pacific/Galapagos|GALT|-
    Pacific/Gambier|GAMT|-
    Pacific/Guadalcanal|SBT|-
    Pacific/Kanton|GMT+13:00|-
    Pacific/Kiritimati|LINT|-
    Pacific/Kosrae|KOST|-
    Pacific/Kwajalein|MHT|-
    Pacific/Majuro|MHT|-
    Pacific/Marquesas|MART|-
    Pacific/Nauru|NRT|-
    Pacific/Niue|NUT|-
    Pacific/Norfolk|NFT|NFST
    Pacific/Noumea|NCT|-
    Pacific/Palau|PWT|-
    Pacific/Pitcairn|PST|-
    Pacific/Pohnpei|PONT|-
    Pacific/Ponape|PONT|-
    Pacific/Port_Moresby|PGT|-
    Pacific/Rarotonga|CKT|-
    Pacific/Tahiti|TAHT|-
    Pacific/Tarawa|GILT|-
    Pacific/Tongatapu|TOT|-
    Pacific/Truk|CHUT|-
    Pacific/Wake|WAKT|-
    Pacific/Wallis|WFT|-
    Pacific/Yap|CHUT|-
    """)

  private static let longNames = table(
    """
    Africa/Casablanca|-|Western European Summer Time
    Africa/El_Aaiun|-|Western European Summer Time
    Africa/Windhoek|-|Western African Time
    America/Dawson|Mountain Standard Time|Mountain Daylight Time
    America/Godthab|West Greenland Standard Time|West Greenland Summer Time
    America/Nuuk|West Greenland Standard Time|West Greenland Summer Time
    America/Punta_Arenas|Punta Arenas Standard Time|-
    America/Scoresbysund|East Greenland Standard Time|East Greenland Summer Time
    America/Whitehorse|Mountain Standard Time|Mountain Daylight Time
    Antarctica/Casey|Casey Time|-
    Antarctica/Palmer|Chile Time|-
    Antarctica/Troll|Greenwich Mean Time|Central European Summer Time
    Asia/Almaty|East Kazakhstan Time|-
    Asia/Amman|Eastern European Standard Time|Eastern European Summer Time
    Asia/Aqtau|West Kazakhstan Time|-
    Asia/Aqtobe|West Kazakhstan Time|-
    Asia/Atyrau|West Kazakhstan Time|-
    Asia/Barnaul|Barnaul Standard Time|-
    Asia/Damascus|Eastern European Standard Time|Eastern European Summer Time
    Asia/Famagusta|Eastern European Time|Eastern European Summer Time
    Asia/Istanbul|Turkey Time|-
    Asia/Kashgar|Xinjiang Standard Time|-
    Asia/Oral|West Kazakhstan Time|-
    Asia/Qostanay|East Kazakhstan Time|-
    Asia/Qyzylorda|West Kazakhstan Time|-
    Asia/Srednekolymsk|Srednekolymsk Time|-
    Asia/Tomsk|Tomsk Standard Time|-
    Asia/Urumqi|Xinjiang Standard Time|-
    Canada/Yukon|Mountain Standard Time|Mountain Daylight Time
    Europe/Astrakhan|Astrakhan Standard Time|-
    Europe/Guernsey|Greenwich Mean Time|British Summer Time
    Europe/Isle_of_Man|Greenwich Mean Time|British Summer Time
    Europe/Istanbul|Turkey Time|-
    Europe/Jersey|Greenwich Mean Time|British Summer Time
    Europe/Kirov|Moscow Standard Time|-
    Europe/Saratov|Saratov Standard Time|-
    Europe/Ulyanovsk|Ulyanovsk Standard Time|-
    Pacific/Bougainville|Bougainville Standard Time|-
    Pacific/Enderbury|Kanton Standard Time|-
    Pacific/Kanton|Kanton Standard Time|-
    """)
}
